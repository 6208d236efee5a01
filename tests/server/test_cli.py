"""The command dispatcher: every command reaches its module, and the overview imports none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_is_registered_by_its_module(command: str) -> None:
    parser = build_parser(command)
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert command in subparsers.choices  # type: ignore[operator]


def test_the_overview_lists_every_command_without_importing_the_sdks() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from server.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in ('mcp', 'openai') if m in sys.modules))\n"
        "print(out.getvalue())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    first, _, overview = done.stdout.partition("\n")
    assert first == "[]"
    for command in COMMANDS:
        assert command in overview


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    batch = tmp_path / "bad.jsonl"
    batch.write_text("not json\n" * 200, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "validate", "--json", str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader leaves at once, like `| head -c 0`
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
