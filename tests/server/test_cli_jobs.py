"""The job commands of the CLI, against the embedded emulator in a temporary home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aoai_batch.models import Batch, BatchPage, FilePage, UploadResult
from server.cli import main
from tests.support.cli import isolate_cli


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = isolate_cli(tmp_path, monkeypatch)
    return home


def batch_file(tmp_path: Path, n: int = 2) -> Path:
    path = tmp_path / "in.jsonl"
    lines = [
        {
            "custom_id": f"t{i}",
            "method": "POST",
            "url": "/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main([*argv, "--json"]) == 0
    return capsys.readouterr().out


def test_upload_create_status_list_and_cancel_print_their_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uploaded = UploadResult.model_validate_json(run_json(capsys, "upload", str(batch_file(tmp_path))))
    assert uploaded.file.status == "processed"

    created = Batch.model_validate_json(
        run_json(capsys, "create", uploaded.file.id, "--metadata", "team=data", "--idempotency-key", "cli-1")
    )
    assert created.metadata["team"] == "data"
    again = Batch.model_validate_json(run_json(capsys, "create", uploaded.file.id, "--idempotency-key", "cli-1"))
    assert again.id == created.id

    status = Batch.model_validate_json(run_json(capsys, "status", created.id))
    assert status.id == created.id
    assert status.input_path == str(tmp_path / "in.jsonl")

    page = BatchPage.model_validate_json(run_json(capsys, "list", "--limit", "5"))
    assert [batch.id for batch in page.batches] == [created.id]

    cancelled = Batch.model_validate_json(run_json(capsys, "cancel", created.id))
    assert cancelled.status in {"cancelling", "cancelled"}


def test_readable_output_is_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upload", str(batch_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    file_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("file id"))
    assert main(["create", file_id]) == 0
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split()[:2] == ["ID", "STATUS"]
    assert lines[-1].split()[1] == "validating"


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "batch_missing"],
        ["cancel", "batch_missing"],
        ["create", "file-missing"],
        ["upload", "no-such-file.jsonl"],
    ],
)
def test_expected_failures_exit_1_with_a_message_and_no_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert "Traceback" not in captured.err


def test_an_invalid_file_is_not_uploaded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    assert main(["upload", str(bad)]) == 1
    assert "invalid_json_line" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["status"], ["create"], ["upload"], ["list", "--limit", "many"], ["create", "file-1", "--metadata", "novalue"]],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_an_invalid_setting_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AOAI_BATCH_FILE_EXPIRY_DAYS", "900")
    assert main(["list"]) == 1
    assert "AOAI_BATCH_FILE_EXPIRY_DAYS" in capsys.readouterr().err


def test_files_lists_uploads_newest_first_in_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [
        UploadResult.model_validate_json(run_json(capsys, "upload", str(batch_file(tmp_path)))).file.id for _ in "abc"
    ]

    first = FilePage.model_validate_json(run_json(capsys, "files", "--limit", "2"))
    rest = FilePage.model_validate_json(run_json(capsys, "files", "--limit", "2", "--after", str(first.last_id)))
    assert [info.id for info in first.files + rest.files] == ids[::-1]
    assert (first.has_more, rest.has_more) == (True, False)

    assert main(["files", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["ID", "FILENAME"]
    assert lines[1].split()[:2] == [ids[2], "in.jsonl"]
    assert lines[-1] == f"more: files --after {ids[1]}"


@pytest.mark.parametrize(
    ("value", "advice"),
    [("in.jsonl", "aoai-batch-mcp upload in.jsonl"), ("batch_abc123", "aoai-batch-mcp status batch_abc123")],
)
def test_create_from_a_path_or_a_batch_id_says_what_it_is_and_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, advice: str
) -> None:
    monkeypatch.chdir(tmp_path)
    batch_file(tmp_path)
    assert main(["create", value]) == 1
    err = capsys.readouterr().err
    assert advice in err
    assert "_batch" not in err  # CLI messages name commands, not tools


def test_create_from_an_unknown_file_id_points_to_the_files_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", "file-missing"]) == 1
    assert "aoai-batch-mcp files" in capsys.readouterr().err


def test_upload_for_a_deployment_that_does_not_exist_names_the_ones_that_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = batch_file(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("gpt-4o-mini", "gpt-5"), encoding="utf-8")
    assert main(["upload", str(path)]) == 1
    assert "gpt-4o-mini" in capsys.readouterr().err
    assert FilePage.model_validate_json(run_json(capsys, "files")).files == []


def test_create_from_a_path_in_a_real_process_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "create", "questions.jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=os.environ.copy(),  # the isolated home and workspace set by the autouse fixture
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert "aoai-batch-mcp upload questions.jsonl" in done.stderr
    assert done.stderr.count("\n") == 1
