"""The job commands of the CLI, against the embedded emulator in a temporary home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aoai_batch.models import Batch, BatchPage, UploadResult
from server.cli import main
from tests.server.harness import isolate_cli


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
