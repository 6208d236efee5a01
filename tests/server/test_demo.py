"""`aoai-batch-mcp demo` end to end: a subprocess that spawns the server under a real MCP client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aoai_batch.models import ResultRow
from server.demo import SAMPLE_PROMPTS

pytestmark = pytest.mark.slow

# A guard against a hung run, not a timing assertion.
HANG_GUARD_SECONDS = 240
# The default pace is for people to watch; the tests do not need to.
FAST = ("--time-scale", "3000")


def _run_demo(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AZURE_OPENAI_ENDPOINT": "https://must-not-be-used.invalid", "OPENAI_API_KEY": "sk-unused"}
    return subprocess.run(
        [sys.executable, "-m", "server", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def _results_path(stdout: str) -> Path:
    lines = [line.strip() for line in stdout.splitlines() if line.strip().startswith("results: ")]
    assert len(lines) == 1, stdout
    return Path(lines[0].removeprefix("results: "))


def test_demo_runs_the_whole_flow_on_the_emulator_and_writes_one_result_per_prompt(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "workspace"

    done = _run_demo("--home", str(home), "--workspace", str(workspace), *FAST, tmp_path=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    results = _results_path(done.stdout)
    assert results.is_file()
    assert results.resolve().is_relative_to(workspace.resolve())
    rows = [ResultRow.model_validate(json.loads(line)) for line in results.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(SAMPLE_PROMPTS)
    assert {row.status for row in rows} == {"succeeded"}
    assert len({row.custom_id for row in rows}) == len(rows)
    assert all(row.content for row in rows)


def test_demo_on_a_second_run_in_the_same_workspace_keeps_the_first_files(tmp_path: Path) -> None:
    args = ("--home", str(tmp_path / "home"), "--workspace", str(tmp_path / "workspace"), *FAST)

    first = _run_demo(*args, tmp_path=tmp_path)
    second = _run_demo(*args, tmp_path=tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert _results_path(first.stdout).is_file()
    assert _results_path(second.stdout) != _results_path(first.stdout)


def test_demo_that_cannot_finish_in_time_exits_non_zero_with_a_message(tmp_path: Path) -> None:
    done = _run_demo("--home", str(tmp_path / "home"), "--time-scale", "0.001", "--timeout", "5", tmp_path=tmp_path)

    assert done.returncode == 1
    assert done.stderr.strip()


@pytest.mark.parametrize("args", [("--timeout", "0"), ("--time-scale", "-1")])
def test_demo_with_a_bad_option_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = _run_demo("--home", str(tmp_path / "home"), *args, tmp_path=tmp_path)

    assert done.returncode == 2


def test_demo_with_a_file_as_workspace_is_a_usage_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x", encoding="utf-8")

    done = _run_demo("--home", str(tmp_path / "home"), "--workspace", str(not_a_folder), tmp_path=tmp_path)

    assert done.returncode == 2
