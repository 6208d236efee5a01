"""`status BATCH_ID --follow`: waits in a real subprocess until the batch has finished, on the embedded emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aoai_batch.models import Batch, UploadResult
from server.cli import main
from tests.support.cli import isolate_cli
from tests.support.paths import REPO_ROOT

FOLLOW_SECONDS = 120  # generous: at this time scale a batch finishes in well under a second of real time


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("AOAI_EMULATOR_TIME_SCALE", "100000")
    monkeypatch.setenv("AOAI_BATCH_POLL_SECONDS", "0.05")
    return home


def started_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str], deployment: str) -> str:
    path = tmp_path / f"{deployment}.jsonl"
    body = {"model": deployment, "messages": [{"role": "user", "content": "hi"}]}
    lines = [{"custom_id": f"t{i}", "method": "POST", "url": "/chat/completions", "body": body} for i in range(3)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert main(["upload", str(path), "--no-validate", "--json"]) == 0
    file_id = UploadResult.model_validate_json(capsys.readouterr().out).file.id
    assert main(["create", file_id, "--json"]) == 0
    return Batch.model_validate_json(capsys.readouterr().out).id


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "server", *argv]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=FOLLOW_SECONDS, check=False)


@pytest.mark.parametrize(
    ("deployment", "status", "code"),
    [
        ("gpt-4o-mini", "completed", 0),
        ("no-such-deployment", "failed", 1),  # the emulator fails it in validation (model_not_found)
    ],
)
def test_follow_waits_until_the_batch_has_finished_and_exits_by_how_it_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deployment: str, status: str, code: int
) -> None:
    batch_id = started_batch(tmp_path, capsys, deployment)
    done = cli("status", batch_id, "--follow", "--json")
    assert done.returncode == code, done.stderr
    final = Batch.model_validate_json(done.stdout)
    assert final.id == batch_id
    assert final.terminal
    assert final.status == status
    assert done.stderr == ""  # --json: no progress bar


def test_follow_without_json_shows_progress_on_stderr_and_the_batch_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch_id = started_batch(tmp_path, capsys, "gpt-4o-mini")
    done = cli("status", batch_id, "--follow")
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    assert f"{batch_id} completed (3/3 requests)" in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr


def test_follow_and_wait_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["status", "batch_x", "--follow", "--wait", "5"])
    assert caught.value.code == 2
    assert "--follow" in capsys.readouterr().err
