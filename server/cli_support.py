"""What the service-backed commands share: settings loading, running an action, exit codes, progress.

Exit codes: 0 done, 1 an expected failure (the message goes to stderr, no traceback), 2 usage.
`--json` prints the result model's JSON; otherwise the command's readable form.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from pydantic import BaseModel, ValidationError

from aoai_batch.errors import BatchToolError
from aoai_batch.models import ProgressFn
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
Action = Callable[[BatchService, argparse.Namespace], Awaitable[BaseModel]]


def load_settings() -> Settings | None:
    """Settings from the environment, or None after saying which one is invalid (never its value)."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str((error.get("loc") or ("?",))[0])
        print(f"error: a setting is invalid: {error['msg']} ({name})", file=sys.stderr)
        return None


def add_service_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    action: Action,
    show: Callable[[Any], str],
) -> argparse.ArgumentParser:
    """A sub-command that opens the service, runs `action` and prints its result (`--json` or `show`)."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=lambda args: run_action(action, show, args))
    return parser


def run_action(action: Action, show: Callable[[Any], str], args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings is None:
        return FAILED
    try:
        result = anyio.run(_open_and_call, settings, action, args)
    except BatchToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    print(result.model_dump_json(indent=2) if args.json else show(result))
    return OK


async def _open_and_call(settings: Settings, action: Action, args: argparse.Namespace) -> BaseModel:
    async with BatchService.open(settings) as service:
        return await action(service, args)


async def print_progress(done: float, total: float | None, message: str | None) -> None:
    if message:
        print(message, file=sys.stderr)


def progress_for(args: argparse.Namespace) -> ProgressFn | None:
    """Progress lines on stderr for people; none with `--json`."""
    return None if args.json else print_progress
