"""`aoai-batch-mcp serve [--transport stdio|http] [--host 127.0.0.1] [--port 8000]`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from server.cli_args import PORT

USAGE_ERROR = 2


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
    # Imported here: `aoai-batch-mcp --help` builds every command's parser, and the MCP SDK takes ~1 s to import.
    import anyio
    from pydantic import ValidationError

    from aoai_batch.errors import InvalidInput
    from aoai_batch.settings import Settings
    from server.app import build_server
    from server.http import serve_http

    # stdout belongs to the protocol on stdio: every log line goes to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:
        # Field names and reasons only: the values may be secrets.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        print(f"aoai-batch-mcp serve: the settings are not valid ({problems}).", file=sys.stderr)
        return USAGE_ERROR
    server = build_server(settings)
    if args.transport == "stdio":
        anyio.run(server.run_stdio_async)
        return 0
    token = settings.http_token.get_secret_value() if settings.http_token else None
    try:
        anyio.run(lambda: serve_http(server, host=args.host, port=args.port, token=token))
    except InvalidInput as exc:
        print(f"aoai-batch-mcp serve: {exc}", file=sys.stderr)
        return USAGE_ERROR
    return 0
