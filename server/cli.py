"""The `aoai-batch-mcp` command: a dispatcher that imports only the module of the command it runs.

Start-up time matters (an MCP client spawns `serve` on every launch), so each command's module, and
with it `mcp` or `openai`, is imported only when that command is chosen.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# command -> module exposing `register(subparsers)`; each parser sets `run=callable(args) -> int`.
COMMANDS: dict[str, str] = {
    "serve": "server.cli_serve",
    "emulator": "server.cli_emulator",
    "demo": "server.demo",
    "validate": "server.cli_files",
    "build": "server.cli_files",
    "upload": "server.cli_jobs",
    "create": "server.cli_jobs",
    "status": "server.cli_jobs",
    "list": "server.cli_jobs",
    "cancel": "server.cli_jobs",
    "results": "server.cli_results",
}

USAGE_ERROR = 2


def build_parser(modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aoai-batch-mcp",
        description="MCP server and CLI for Azure OpenAI Global Batch (runs `serve` when no command is given).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(modules):
        importlib.import_module(module).register(subparsers)
    return parser


def _modules_for(argv: Sequence[str]) -> list[str]:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in COMMANDS:
        return [COMMANDS[command]]
    return list(COMMANDS.values())


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0].startswith("--transport") or args_list[0] in {"--host", "--port"}:
        args_list = ["serve", *args_list]
    parser = build_parser(_modules_for(args_list))
    args = parser.parse_args(args_list)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return USAGE_ERROR
    return int(run(args))


if __name__ == "__main__":
    sys.exit(main())
