"""The `aoai-batch-mcp` command: a dispatcher that imports only the module of the command it runs.

Start-up time matters (an MCP client spawns `serve` on every launch), so each command's module, and
with it `mcp` or `openai`, is imported only when that command is chosen.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from server.cli_args import OUTPUT_RULE, USAGE, HelpFormatter

# command -> (module exposing `register(subparsers)`, one-line summary); each parser sets
# `run=callable(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("server.cli_serve", "run the MCP server (the default command)"),
    "demo": ("server.demo", "run the whole flow on the embedded emulator through a real MCP client"),
    "emulator": ("server.cli_emulator", "serve the Azure OpenAI Files + Batches emulator over HTTP"),
    "validate": ("server.cli_files", "check a batch file against Azure's rules (exit 0 valid, 1 issues)"),
    "build": ("server.cli_files", "write a batch file from prompts, request objects or rows"),
    "upload": ("server.cli_jobs", "check and upload a batch file"),
    "files": ("server.cli_jobs", "list uploaded files"),
    "create": ("server.cli_jobs", "start a batch from an uploaded file"),
    "status": ("server.cli_jobs", "show a batch, optionally waiting for a change"),
    "list": ("server.cli_jobs", "list batches"),
    "cancel": ("server.cli_jobs", "cancel a running batch"),
    "results": ("server.cli_results", "download a finished batch's results joined to its inputs"),
    "run": ("server.cli_runs", "runs: one job of any size split into batches (run start|status|list|cancel|results)"),
    "worker": ("server.cli_runs", "advance every active run in the foreground until none is left"),
    "config": ("server.cli_config", "show the resolved settings and where state and files are (no secrets)"),
}

DISTRIBUTION = "aoai-batch-mcp"


class CommandParser(argparse.ArgumentParser):
    """A command's parser: its options' help shows their defaults."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)


class PrintVersion(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"{DISTRIBUTION} {installed_version()}")
        parser.exit()


def installed_version() -> str:
    # Imported here: importlib.metadata costs ~20 ms, and every start of `serve` builds this parser.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser for `command` only (its module imported), or an overview of every command."""
    parser = CommandParser(
        prog="aoai-batch-mcp",
        description="MCP server and CLI for Azure OpenAI Global Batch (runs `serve` when no command is given).",
        epilog=f"Run `aoai-batch-mcp COMMAND --help` for a command's options. {OUTPUT_RULE}",
    )
    parser.add_argument("--version", action=PrintVersion, help="print the version and exit")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=CommandParser, help="the command to run (default: serve)"
    )
    if command in COMMANDS:
        importlib.import_module(COMMANDS[command][0]).register(subparsers)
    else:
        for name, (_, summary) in COMMANDS.items():
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] in {"--transport", "--host", "--port"} or args_list[0].startswith("--transport="):
        args_list = ["serve", *args_list]
    command = next((arg for arg in args_list if not arg.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(args_list)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return USAGE
    try:
        code = int(run(args))
        sys.stdout.flush()  # inside the try: a closed pipe raises here, not at interpreter exit
        return code
    except BrokenPipeError:
        # `aoai-batch-mcp list | head`: the reader left; say nothing more and let Python not complain at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
