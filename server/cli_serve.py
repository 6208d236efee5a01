"""`aoai-batch-mcp serve [--transport stdio|http] [--host 127.0.0.1] [--port 8000] [--stateless] [--read-only]
[--tools a,b]`.

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

from server.cli_args import PORT, USAGE, http_url

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
    parser.add_argument(
        "--public-url",
        type=http_url,
        help="HTTP with sign-in: the /mcp URL clients use, when it is not http://HOST:PORT/mcp (e.g. behind a proxy)",
    )
    parser.add_argument(
        "--stateless",
        action="store_true",
        help="HTTP: keep no sessions, so replicas can sit behind a round-robin load balancer "
        "(2025-11-25 clients then get no resources/updated notifications; see README 'Replicas')",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="serve only the tools that change nothing (AOAI_BATCH_READ_ONLY)"
    )
    parser.add_argument("--tools", type=tool_names, help="serve only these tools, comma-separated")
    parser.set_defaults(run=run)


def tool_names(text: str) -> frozenset[str]:
    # The names are checked against the registered tools once the server is built (`narrow_tools`).
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("give tool names separated by commas, e.g. get_batch,list_batches")
    return names


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `serve --help` and a usage error build this parser, and the MCP SDK takes ~1 s.
    import anyio
    from pydantic import ValidationError
    from starlette.types import ASGIApp

    from aoai_batch.errors import InvalidInput
    from aoai_batch.settings import Settings
    from server.app import build_server, narrow_tools
    from server.http import http_app, require_guard, serve_http
    from server.oauth import server_auth
    from server.stdio import serve_stdio
    from tools.registry import ToolSurface

    # stdout belongs to the protocol on stdio: every log line goes to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings(read_only=True) if args.read_only else Settings()
    except ValidationError as exc:
        # Field names and reasons only: the values may be secrets.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        print(f"aoai-batch-mcp serve: the settings are not valid ({problems}).", file=sys.stderr)
        return USAGE
    surface = ToolSurface(read_only=settings.read_only, allowed=args.tools)
    try:
        if args.transport == "stdio":
            server = build_server(settings, tools=args.tools)
            anyio.run(narrow_tools, server, surface)  # an unknown --tools name is a usage error, not a crash
            serve_stdio(server, on_ready=_tell_a_person if _in_a_terminal() else lambda: None)
            return 0
        sign_in = settings.sign_in
        token = settings.http_token.get_secret_value() if settings.http_token else None
        require_guard(args.host, token=token, sign_in=sign_in is not None)  # before anything is bound

        async def app_for(url: str) -> ASGIApp:
            auth = server_auth(sign_in, resource_url=url) if sign_in else None
            server = build_server(settings, tools=args.tools, auth=auth)
            await narrow_tools(server, surface)
            return http_app(server, host=args.host, token=token, stateless=args.stateless)

        anyio.run(
            lambda: serve_http(app_for, host=args.host, port=args.port, on_ready=_tell_url, public_url=args.public_url)
        )
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
