"""`aoai-batch-mcp emulator [--host 127.0.0.1] [--port 8765] [--time-scale N] [--engine echo|forward] ...`.

Serves the Azure OpenAI Files + Batches emulator over HTTP. Flags override the `AOAI_EMULATOR_*`
variables; the key is taken from `AOAI_EMULATOR_KEY` only, so it never shows in a process list.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from typing import Any

from aoai_batch.quota import EXAMPLE, parse_token_limits
from server.cli_args import PORT, USAGE, float_in, int_in, positive_number

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# flag destination -> EmulatorSettings field
FLAG_FIELDS = {
    "time_scale": "time_scale",
    "engine": "engine",
    "forward_url": "forward_url",
    "forward_model": "forward_model",
    "forward_concurrency": "forward_concurrency",
    "deployments": "deployments",
    "fail_rate": "fail_rate",
    "faults": "faults",
    "wire_format": "format",
    "home": "home",
    "no_output_when_all_failed": "no_output_when_all_failed",
    "enqueued_tokens": "enqueued_tokens",
    "quota_mode": "quota_mode",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulator", help="serve the Azure OpenAI Files + Batches emulator over HTTP (loopback by default)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address")
    parser.add_argument("--port", type=PORT, default=8765, help="port; 0 picks a free one")
    parser.add_argument("--time-scale", type=positive_number, help="emulated seconds per real second (default: 600)")
    parser.add_argument("--engine", choices=["echo", "forward"], help="how requests are answered (default: echo)")
    parser.add_argument("--forward-url", help="OpenAI-compatible base URL for --engine forward (key: env only)")
    parser.add_argument("--forward-model", help="model name sent to the forward endpoint instead of the deployment")
    parser.add_argument(
        "--forward-concurrency", type=int_in(1, 256), metavar="1-256", help="requests in flight at once (default: 8)"
    )
    parser.add_argument(
        "--deployments",
        metavar="NAME=MODEL,...",
        help="the Global-Batch deployments (default: gpt-4o-mini and gpt-4o)",
    )
    parser.add_argument(
        "--fail-rate",
        type=float_in(0, 1),
        metavar="0-1",
        help="share of requests that fail, per custom_id (default: 0)",
    )
    parser.add_argument("--faults", help="API faults, e.g. 429:0.2,503:0.1,drop:0.05,latency_ms:50 (default: none)")
    parser.add_argument(
        "--format",
        dest="wire_format",
        choices=["standard", "legacy"],
        help="answer format; legacy: ISO timestamps, capitalised status (default: standard)",
    )
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="where the emulator keeps its state (default: AOAI_EMULATOR_HOME, else `emulator` in the platform's "
        "user data dir)",
    )
    parser.add_argument(
        "--no-output-when-all-failed",
        action="store_const",
        const=True,
        help="give a batch whose every request failed no output file, as Azure sometimes does (default: off)",
    )
    parser.add_argument(
        "--enqueued-tokens",
        type=token_limits,
        metavar="NAME=TOKENS,...",
        help=f"enqueued-token limit per deployment, K/M/B allowed, e.g. {EXAMPLE} (default: no limit)",
    )
    parser.add_argument(
        "--quota-mode",
        choices=["fail_fast", "validate"],
        help="over the limit, refuse the create (fail_fast) or fail the batch in validation (default: fail_fast)",
    )
    parser.set_defaults(run=run)


def token_limits(text: str) -> str:
    """An argparse type: a `name=tokens,...` list, checked here so a bad one is a usage error."""
    try:
        parse_token_limits(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `emulator --help` and a usage error build this parser; these take ~0.7 s.
    import anyio
    import uvicorn
    from pydantic import ValidationError

    from aoai_batch.emulator import Emulator
    from aoai_batch.settings import EmulatorSettings
    from server.uvicorn_server import QuietServer

    overrides = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None}
    try:
        settings = EmulatorSettings(**overrides)
        emulator = Emulator(settings)
    except (ValidationError, ValueError) as exc:
        print(f"aoai-batch-mcp emulator: {exc}", file=sys.stderr)
        return USAGE
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"aoai-batch-mcp emulator: cannot listen on {args.host}:{args.port} ({exc.strerror}).", file=sys.stderr)
        return USAGE
    port = sock.getsockname()[1]
    _announce(args.host, port, settings.key is not None, emulator.key, str(settings.home))
    config = uvicorn.Config(emulator.app, log_level="warning", lifespan="off", ws="none")
    server = QuietServer(config)

    async def serve() -> None:
        async with emulator:
            await server.serve(sockets=[sock])

    # Ctrl+C or SIGTERM: uvicorn shuts down gracefully and serve() returns; the emulator then closes.
    # A second Ctrl+C during that close is still a normal way to stop.
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve)
    return 0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _announce(host: str, port: int, key_configured: bool, default_key: str, home: str) -> None:
    shown_host = f"[{host}]" if ":" in host else host
    endpoint = f"http://{shown_host}:{port}"
    key_line = (
        "AZURE_OPENAI_API_KEY=<the value of AOAI_EMULATOR_KEY>"
        if key_configured
        else f"AZURE_OPENAI_API_KEY={default_key}   (any non-empty key is accepted)"
    )
    print(f"Azure OpenAI emulator listening on {endpoint} (state in {home})", flush=True)
    print(f"  AZURE_OPENAI_ENDPOINT={endpoint}", flush=True)
    print(f"  {key_line}", flush=True)
    print(f"  OpenAI-style: OPENAI_BASE_URL={endpoint}/v1", flush=True)
    if host not in LOOPBACK:
        print("  warning: listening beyond loopback; set AOAI_EMULATOR_KEY to require a key.", file=sys.stderr)
    print("Press Ctrl+C to stop.", flush=True)
