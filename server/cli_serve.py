"""`aoai-batch-mcp serve [--transport stdio|http] [--host 127.0.0.1] [--port 8000]`.

stdout is the protocol on stdio: everything for people goes to stderr. Ctrl-C (or SIGTERM) stops the
server cleanly with exit 0, on either transport.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from server.cli_args import PORT, USAGE

CLIENT_NAME = "aoai-batch"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the MCP server (the default command)")
    parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (the client starts the server) or streamable HTTP at /mcp",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address")
    parser.add_argument("--port", type=PORT, default=8000, help="HTTP port; 0 picks a free one")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `serve --help` and a usage error build this parser, and the MCP SDK takes ~1 s.
    import anyio
    from pydantic import ValidationError

    from aoai_batch.errors import InvalidInput
    from aoai_batch.settings import Settings
    from server.app import build_server
    from server.http import serve_http
    from server.stdio import serve_stdio

    # stdout belongs to the protocol on stdio: every log line goes to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:
        # Field names and reasons only: the values may be secrets.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        print(f"aoai-batch-mcp serve: the settings are not valid ({problems}).", file=sys.stderr)
        return USAGE
    server = build_server(settings)
    if args.transport == "stdio":
        serve_stdio(server, on_ready=_tell_a_person if _in_a_terminal() else lambda: None)
        return 0
    token = settings.http_token.get_secret_value() if settings.http_token else None
    try:
        anyio.run(lambda: serve_http(server, host=args.host, port=args.port, token=token, on_ready=_tell_url))
    except InvalidInput as exc:
        print(f"aoai-batch-mcp serve: {exc}", file=sys.stderr)
        return USAGE
    return 0


def _in_a_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _tell_a_person() -> None:
    """Someone started the server by hand: say what it is, and how a client starts it instead."""
    print(
        "aoai-batch-mcp is an MCP server on stdio, for an MCP client to start "
        f"(e.g. `claude mcp add {CLIENT_NAME} -- {server_command()}`). Ctrl-C stops it.",
        file=sys.stderr,
        flush=True,
    )


def _tell_url(url: str) -> None:
    print(f"aoai-batch-mcp serves MCP (streamable HTTP) at {url}; Ctrl-C stops it.", file=sys.stderr, flush=True)


def server_command() -> str:
    """The absolute command that starts this server, as a client config needs it."""
    launched = Path(sys.argv[0])
    if launched.name == "__main__.py":  # `python -m server`
        return shlex.join([sys.executable, "-m", "server", "serve"])
    return shlex.join([str(launched.resolve()), "serve"])
