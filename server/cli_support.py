"""What the service-backed commands share: settings loading, running an action, exit codes, progress.

Exit codes: 0 done, 1 an expected failure (the message goes to stderr, no traceback), 2 usage.
`--json` prints the result model's JSON; otherwise the command's readable form.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import anyio
from pydantic import BaseModel, ValidationError

from aoai_batch.errors import BatchToolError
from aoai_batch.models import ProgressFn
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from server.cli_args import FAILED, OK
from server.cli_errors import report_error

INTERRUPTED = 130
BAR_WIDTH = 30
Action = Callable[[BatchService, argparse.Namespace], Awaitable[BaseModel]]
Opener = Callable[[Settings, Any, argparse.Namespace], Awaitable[BaseModel]]
"""Opens what a command's action takes (by default the batch service), calls the action and returns its result."""
ExitCodeOf = Callable[[Any, argparse.Namespace], int]
"""The exit code of a command whose result was printed (by default 0)."""


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
    action: Callable[[Any, argparse.Namespace], Awaitable[BaseModel]],
    show: Callable[[Any], str],
    outcome: ExitCodeOf | None = None,
    *,
    opener: Opener | None = None,
) -> argparse.ArgumentParser:
    """A sub-command that opens the service (or what `opener` opens), runs `action` and prints its result
    (`--json` or `show`)."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=lambda args: run_action(action, show, args, outcome, opener=opener or _open_and_call))
    return parser


def run_action(
    action: Callable[[Any, argparse.Namespace], Awaitable[BaseModel]],
    show: Callable[[Any], str],
    args: argparse.Namespace,
    outcome: ExitCodeOf | None = None,
    *,
    opener: Opener,
) -> int:
    settings = load_settings()
    if settings is None:
        return FAILED
    try:
        result = anyio.run(opener, settings, action, args)
    except BatchToolError as exc:
        report_error(exc, as_json=args.json)
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    print(result.model_dump_json(indent=2) if args.json else show(result))
    return outcome(result, args) if outcome else OK


async def _open_and_call(settings: Settings, action: Action, args: argparse.Namespace) -> BaseModel:
    async with BatchService.open(settings) as service:
        return await action(service, args)


async def print_progress(done: float, total: float | None, message: str | None) -> None:
    if message:
        print(message, file=sys.stderr)


def progress_for(args: argparse.Namespace) -> ProgressFn | None:
    """Progress lines on stderr for people; none with `--json`."""
    return None if args.json else print_progress


class ProgressBar:
    """Progress of `done` of `total` on stderr: one line redrawn in a terminal, a line per change elsewhere."""

    def __init__(self, stream: TextIO | None = None, width: int = BAR_WIDTH) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.redraw = self.stream.isatty()
        self._last = ""

    async def __call__(self, done: float, total: float | None, message: str | None) -> None:
        line = self.line(done, total, message)
        if line == self._last:
            return
        self._last = line
        if self.redraw:
            self.stream.write(f"\r{line}\x1b[K")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()

    def line(self, done: float, total: float | None, message: str | None) -> str:
        if not total:
            return message or ""
        share = min(max(done / total, 0.0), 1.0)
        filled = round(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        return f"[{bar}] {share:4.0%}" + (f" {message}" if message else "")

    def finish(self) -> None:
        """End the redrawn line, so what follows starts on a line of its own."""
        if self.redraw and self._last:
            self.stream.write("\n")
            self.stream.flush()


def progress_bar_for(args: argparse.Namespace) -> ProgressBar | None:
    """A progress bar on stderr for people; none with `--json`."""
    return None if args.json else ProgressBar()
