"""`aoai-batch-mcp results`, against the embedded emulator in a temporary home.

The emulator's time scale is set so high that a batch has finished by the next time it is asked about:
no test waits for it.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from subprocess import PIPE, Popen

import pytest

from aoai_batch.models import Batch, FetchSummary, UploadResult
from server.cli import main
from server.cli_results import plain
from tests.support.cli import isolate_cli

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


def finish(batch_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Let the (instant) emulator finish the batch now, so that a later process only downloads."""
    assert main(["status", batch_id, "--json"]) == 0
    assert Batch.model_validate_json(capsys.readouterr().out).status == "completed"


def results_in_a_process(argv: list[str], *, prelude: str = "", env: dict[str, str] | None = None) -> Popen[str]:
    """`aoai-batch-mcp results ...` in a process of its own (after `prelude`, e.g. a resource limit)."""
    code = f"import sys\n{prelude}\nfrom server.cli import main\nsys.exit(main(sys.argv[1:]))"
    return Popen(
        [sys.executable, "-c", code, "results", *argv],
        stdout=PIPE,
        stderr=PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_a_folder_that_cannot_be_made_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOTDIR: the folder's parent is a regular file, which stops root as well as anyone."""
    batch_id = start_batch(tmp_path, capsys)
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    out = tmp_path / "a-file" / "results"

    assert main(["results", batch_id, "--output-dir", str(out)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(out) in errors[0]
    assert not (tmp_path / "a-file").is_dir()


def test_a_full_disk_is_one_line_naming_the_folder_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real limit: the process runs with RLIMIT_FSIZE at 256 KiB (Python ignores SIGXFSZ), so writing the
    1 MB download fails with EFBIG, as a full disk or quota would (works as root, unlike chmod)."""
    batch_id = start_batch(tmp_path, capsys, n=1000)
    finish(batch_id, capsys)
    out = tmp_path / "out"
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))"

    with results_in_a_process([batch_id, "--output-dir", str(out)], prelude=limit) as process:
        stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 1
    assert stdout == ""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(out) in errors[0]
    assert list(out.iterdir()) == []


def test_the_scratch_of_a_killed_results_is_removed_by_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real `results` process, slowed by the emulator's latency fault, is killed while it downloads."""
    batch_id = start_batch(tmp_path, capsys)
    finish(batch_id, capsys)
    out = tmp_path / "out"
    with results_in_a_process(
        [batch_id, "--output-dir", str(out)], env={"AOAI_EMULATOR_FAULTS": "latency_ms:1500"}
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("Downloading the output file"):
                break
        process.kill()
        process.communicate(timeout=30)
    left = [path.name for path in out.iterdir()]
    assert len(left) == 1
    assert left[0].startswith(".fetch-")

    assert main(["results", batch_id, "--output-dir", str(out), "--json"]) == 0

    summary = FetchSummary.model_validate_json(capsys.readouterr().out)
    assert summary.counts.succeeded == 3
    assert [path.name for path in out.iterdir()] == [Path(summary.results_path or "").name]
