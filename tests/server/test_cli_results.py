"""`aoai-batch-mcp results`, against the embedded emulator in a temporary home.

The emulator's time scale is set so high that a batch has finished by the next time it is asked about:
no test waits for it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from aoai_batch.models import Batch, FetchSummary, UploadResult
from server.cli import main
from server.cli_results import plain
from tests.server.harness import isolate_cli

INSTANT = "1e12"  # emulated seconds per real second: any batch is done when next asked
FROZEN = "1e-6"  # a batch stays validating for the whole test


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("AOAI_EMULATOR_TIME_SCALE", INSTANT)
    monkeypatch.chdir(tmp_path)  # results land in the current folder
    return home


def start_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int = 3) -> str:
    path = tmp_path / "in.jsonl"
    lines = [
        {
            "custom_id": f"t{i}",
            "method": "POST",
            "url": "/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f'say, "{i}"'}]},
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert main(["upload", str(path), "--json"]) == 0
    uploaded = UploadResult.model_validate_json(capsys.readouterr().out)
    assert main(["create", uploaded.file.id, "--json"]) == 0
    return Batch.model_validate_json(capsys.readouterr().out).id


def test_results_prints_the_summary_as_json_and_writes_into_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = start_batch(tmp_path, capsys)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)

    assert main(["results", batch_id, "--json"]) == 0

    summary = FetchSummary.model_validate_json(capsys.readouterr().out)
    assert summary.counts.succeeded == 3
    assert summary.results_path is not None
    assert Path(summary.results_path).parent == here


def test_results_as_csv_into_a_chosen_folder_then_again_under_a_new_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch_id = start_batch(tmp_path, capsys)
    out = tmp_path / "out"

    assert main(["results", batch_id, "--format", "csv", "--output-dir", str(out), "--json"]) == 0
    first = FetchSummary.model_validate_json(capsys.readouterr().out)
    assert main(["results", batch_id, "--format", "csv", "--output-dir", str(out), "--json"]) == 0
    second = FetchSummary.model_validate_json(capsys.readouterr().out)

    assert first.results_path is not None
    assert second.results_path is not None
    assert first.results_path != second.results_path
    with Path(first.results_path).open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["custom_id"] for row in table] == ["t0", "t1", "t2"]
    assert table[1]["input"] == 'say, "1"'


def test_readable_output_names_the_files_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch_id = start_batch(tmp_path, capsys)

    assert main(["results", batch_id, "--preview", "2"]) == 0

    out = capsys.readouterr().out
    assert batch_id in out
    preview = [line.split()[0] for line in out.splitlines() if "[succeeded]" in line]
    assert preview == ["t0", "t1"]  # only two preview rows


def test_a_running_batch_is_an_expected_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_EMULATOR_TIME_SCALE", FROZEN)
    batch_id = start_batch(tmp_path, capsys)

    assert main(["results", batch_id]) == 1
    assert "error:" in capsys.readouterr().err


def test_an_unknown_batch_is_an_expected_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "batch_nope"]) == 1
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "argv", [["results"], ["results", "b", "--format", "xlsx"], ["results", "b", "--preview", "99"]]
)
def test_bad_usage_exits_with_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("text", "shown"),
    [(None, "-"), ("two\nlines", "two lines"), ("\x1b[31mred", " [31mred"), ("x" * 500, "x" * 99 + "…")],
)
def test_model_text_is_shown_on_one_line_without_terminal_escapes(text: str | None, shown: str) -> None:
    assert plain(text) == shown
