"""The command line's usage: help on every argument with its default, ranges as usage errors, `--version`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import get_args

import pytest

from aoai_batch.models import BatchStatus
from server.cli import COMMANDS, build_parser, main
from server.cli_args import OUTPUT_RULE, HelpFormatter
from tests.support.cli import isolate_cli

USAGE = 2


def command_parser(command: str) -> argparse.ArgumentParser:
    parser = build_parser(command)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen: argparse.ArgumentParser = subparsers.choices[command]
    return chosen


def shows_a_default(action: argparse.Action) -> bool:
    default = action.default
    return bool(action.option_strings) and default not in (None, False, [], argparse.SUPPRESS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_argument_has_help_and_shows_its_default(command: str) -> None:
    parser = command_parser(command)
    formatter = HelpFormatter(parser.prog)

    for action in parser._actions:
        assert action.help, (command, action.dest)
        assert action.help != argparse.SUPPRESS, (command, action.dest)
        if shows_a_default(action):
            assert "default" in (formatter._get_help_string(action) or ""), (command, action.dest)
    assert parser.format_help()  # every help string formats (a stray % would raise here)


def test_the_overview_has_help_for_every_argument() -> None:
    parser = build_parser(None)

    assert all(action.help for action in parser._actions)
    assert "default: serve" in parser.format_help()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_that_writes_files_states_where(command: str) -> None:
    parser = command_parser(command)

    if any(action.dest == "output_dir" for action in parser._actions):
        assert OUTPUT_RULE in " ".join(parser.format_help().split())


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["status", "b", "--wait", "600"], "from 0 to 50"),
        (["status", "b", "--wait", "-1"], "from 0 to 50"),
        (["status", "b", "--wait", "nan"], "from 0 to 50"),
        (["list", "--limit", "0"], "from 1 to 100"),
        (["list", "--limit", "101"], "from 1 to 100"),
        (["upload", "f.jsonl", "--expires-after-days", "31"], "from 14 to 30"),
        (["results", "b", "--preview", "21"], "from 0 to 20"),
        (["validate", "f.jsonl", "--max-requests", "0"], "1 or more"),
        (["build", "--deployment", "d", "--prompt", "x", "--max-bytes", "-5"], "1 or more"),
        (["serve", "--port", "65536"], "from 0 to 65535"),
        (["emulator", "--port", "-1"], "from 0 to 65535"),
        (["emulator", "--fail-rate", "1.5"], "from 0 to 1"),
        (["emulator", "--forward-concurrency", "0"], "from 1 to 256"),
        (["emulator", "--time-scale", "0"], "greater than 0"),
        (["demo", "--timeout", "0"], "greater than 0"),
        (["create", "file-1", "--endpoint", "/images"], "/chat/completions"),
        (["create", "file-1", "--completion-window", "48h"], "24h"),
    ],
)
def test_a_value_out_of_range_is_a_usage_error_naming_the_range(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == USAGE
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}" in err
    assert named in err


def test_an_unknown_status_is_refused_with_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["list", "--status", "done"])

    assert exited.value.code == USAGE
    err = capsys.readouterr().err
    assert all(status in err for status in get_args(BatchStatus))


def test_a_status_is_taken_in_any_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_cli(tmp_path, monkeypatch)

    assert main(["list", "--status", "Completed", "--json"]) == 0


def test_version_prints_the_installed_version_without_importing_the_sdks() -> None:
    code = (
        "import sys\n"
        "from server.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exit_:\n"
        "    print(exit_.code, sorted(m for m in ('mcp', 'openai') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert done.stdout.splitlines() == [f"aoai-batch-mcp {version('aoai-batch-mcp')}", "0 []"]
