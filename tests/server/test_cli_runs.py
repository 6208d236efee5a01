"""`run start|status|list|cancel|results` and `worker`, on the embedded emulator in a temporary home.

`worker` and `run status --follow` run as real subprocesses (they are what scripts and cron start); the rest
run in-process through `main`, the same code path, to keep the suite quick.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aoai_batch.runs.models import Run, RunPage, RunResultsSummary
from server.cli import main
from tests.support.batch_files import request_line, write_lines
from tests.support.cli import isolate_cli
from tests.support.paths import REPO_ROOT
from tests.support.runs import SHARD_REQUESTS, result_rows

FOLLOW_SECONDS = 120  # generous: at this time scale a shard's batch finishes in well under a second
ROWS = 25


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("AOAI_EMULATOR_TIME_SCALE", "100000")
    monkeypatch.setenv("AOAI_BATCH_POLL_SECONDS", "0.05")
    monkeypatch.setenv("AOAI_BATCH_MAX_REQUESTS", str(SHARD_REQUESTS))
    return home


def rows_csv(tmp_path: Path, rows: int = ROWS) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("id,text\n" + "".join(f"r{n},hello {n}\n" for n in range(rows)), encoding="utf-8")
    return path


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "server", *argv]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=FOLLOW_SECONDS, check=False)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def started(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    return Run.model_validate_json(run_json(capsys, "run", "start", "--deployment", "gpt-4o-mini", *argv))


def test_a_run_of_rows_is_started_advanced_by_the_worker_and_merged_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = rows_csv(tmp_path)
    run = started(
        capsys, "--deployment", "gpt-4o", "--source", str(source), "--template", "Say {text}", "--id-field", "id"
    )
    worked = cli("worker")
    done = Run.model_validate_json(run_json(capsys, "run", "status", run.id))
    summary = RunResultsSummary.model_validate_json(
        run_json(capsys, "run", "results", run.id, "--output-dir", str(tmp_path / "out"))
    )

    assert run.status == "running"
    assert run.source_path == str(source)
    assert sum(run.shard_counts.values()) == 3
    assert worked.returncode == 0, worked.stderr
    assert run.id in worked.stdout
    assert "no active run is left" in worked.stderr
    assert done.status == "completed"
    assert summary.counts.succeeded == ROWS
    rows = result_rows(summary.results_path)
    assert [row["custom_id"] for row in rows] == [f"r{n}" for n in range(ROWS)]
    assert rows[3]["source"] == {"id": "r3", "text": "hello 3"}  # the row's own columns beside the answer


@pytest.mark.parametrize("as_json", [True, False])
def test_status_follow_advances_the_run_until_it_has_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    run = started(capsys, "--prompt", "one", "--prompt", "two", "--name", "pair")
    followed = cli("run", "status", run.id, "--follow", *(["--json"] if as_json else []))

    assert followed.returncode == 0, followed.stderr
    if as_json:
        final = Run.model_validate_json(followed.stdout)
        assert (final.id, final.status, final.request_counts.completed) == (run.id, "completed", 2)
    else:
        assert "completed (finished)" in followed.stdout
        assert "100%" in followed.stderr  # the progress bar


def test_a_cancelled_run_ends_cancelled_and_follow_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = started(capsys, "--source", str(rows_csv(tmp_path)), "--template", "{text}")
    cancelling = Run.model_validate_json(run_json(capsys, "run", "cancel", run.id))
    code = main(["run", "status", run.id, "--follow", "--json"])
    final = Run.model_validate_json(capsys.readouterr().out)
    again = main(["run", "cancel", run.id, "--json"])
    error = json.loads(capsys.readouterr().out)["error"]

    assert cancelling.status in {"cancelling", "cancelled"}
    assert code == 1
    assert final.status == "cancelled"
    assert again == 1
    assert (error["kind"], error["code"]) == ("rejected", "run_not_cancellable")


def test_a_batch_file_as_source_is_run_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = write_lines(tmp_path / "big.jsonl", *(request_line(f"line-{n}") for n in range(12)))
    run = started(capsys, "--source", str(batch), "--retries", "0", "--idempotency-key", "k1")
    again = started(capsys, "--source", str(batch), "--idempotency-key", "k1")
    page = RunPage.model_validate_json(run_json(capsys, "run", "list"))

    assert run.source_path is None
    assert (run.requests, run.retries) == (12, 0)
    assert again.id == run.id
    assert [listed.id for listed in page.runs] == [run.id]


def test_readable_output_names_the_next_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "list"]) == 0
    empty = capsys.readouterr().out
    assert main(["run", "start", "--deployment", "gpt-4o", "--prompt", "hi"]) == 0
    shown = capsys.readouterr().out
    assert main(["run", "list", "--limit", "1"]) == 0
    listed = capsys.readouterr().out

    assert empty.strip() == "no runs"
    assert "aoai-batch-mcp worker" in shown
    assert "1 queued" in shown
    assert "running" in listed


def test_results_of_a_running_run_say_how_to_wait(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = started(capsys, "--prompt", "hi")
    code = main(["run", "results", run.id, "--json"])
    captured = capsys.readouterr()

    assert code == 1
    assert json.loads(captured.out)["error"]["kind"] == "not_ready"
    assert f"run status {run.id} --follow" in captured.err


def test_an_unknown_run_names_run_list(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "status", "run_000000000000000000000000", "--json"])
    captured = capsys.readouterr()

    assert code == 1
    assert json.loads(captured.out)["error"]["kind"] == "not_found"
    assert "`aoai-batch-mcp run list`" in captured.err
    assert "list_runs" not in captured.err  # tool words stay out of the CLI


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "start", "--prompt", "hi"],  # no --deployment
        ["run", "start", "--deployment", "gpt-4o"],  # no source
        ["run", "start", "--deployment", "gpt-4o", "--prompt", "hi", "--retries", "11"],
        ["run", "status", "run_x", "--wait", "51"],
        ["run"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_an_unknown_deployment_starts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "start", "--deployment", "no-such-deployment", "--prompt", "hi", "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert main(["run", "list", "--json"]) == 0
    page = RunPage.model_validate_json(capsys.readouterr().out)

    assert code == 1
    assert error["kind"] == "invalid_input"
    assert page.runs == []


def test_worker_forever_keeps_serving_runs_started_after_it(capsys: pytest.CaptureFixture[str]) -> None:
    command = [sys.executable, "-m", "server", "worker", "--forever"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT) as worker:
        try:
            assert worker.stderr is not None
            assert worker.stdout is not None
            assert "waiting for new ones" in worker.stderr.readline()
            run = started(capsys, "--prompt", "late")
            for line in worker.stdout:  # a line per change the worker made, until the run has completed
                if run.id in line and "completed" in line:
                    break
            done = Run.model_validate_json(run_json(capsys, "run", "status", run.id))
        finally:
            worker.terminate()
            worker.wait(timeout=FOLLOW_SECONDS)
    assert done.status == "completed"


def test_worker_in_process_ends_every_run_and_results_read_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = started(capsys, "--prompt", "one", "--prompt", "two")
    worked = main(["worker"])
    lines = capsys.readouterr()
    waited = main(["run", "status", run.id, "--wait", "1"])
    status = capsys.readouterr().out
    fetched = main(["run", "results", run.id, "--output-dir", str(tmp_path / "out"), "--preview", "2"])
    shown = capsys.readouterr().out

    assert worked == 0
    assert f"{run.id} completed" in lines.out
    assert "no active run is left" in lines.err
    assert waited == 0
    assert "completed (finished)" in status
    assert fetched == 0
    assert "2 succeeded, 0 failed, 0 missing" in shown
    assert "[succeeded]" in shown


def test_an_invalid_setting_is_named_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_BATCH_POLL_SECONDS", "soon")
    codes = [main(["run", "list"]), main(["worker"])]
    assert codes == [1, 1]
    assert capsys.readouterr().err.count("(AOAI_BATCH_POLL_SECONDS)") == 2


def test_run_start_shows_the_estimate_and_refuses_above_max_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    run = started(capsys, "--prompt", "one", "--body", '{"max_tokens": 10}')
    code = main(["run", "start", "--deployment", "gpt-4o-mini", "--prompt", "one", "--max-cost", "0", "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    readable = main(["run", "status", run.id])
    shown = capsys.readouterr().out

    assert run.estimated_cost is not None
    assert run.estimated_cost.total_upper_bound is not None
    assert code == 1
    assert error["kind"] == "over_budget"
    assert [entry.name for entry in (home / "runs").iterdir()] == [run.id]  # the refused run left nothing
    assert readable == 0
    assert "cost" in shown
    assert "up to USD" in shown


def test_run_results_prints_the_cost_of_the_usage_returned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = started(capsys, "--prompt", "one", "--prompt", "two")
    worked = cli("worker")
    code = main(["run", "results", run.id, "--output-dir", str(tmp_path / "out")])
    shown = capsys.readouterr().out
    summary = RunResultsSummary.model_validate_json(
        run_json(capsys, "run", "results", run.id, "--output-dir", str(tmp_path / "out"), "--overwrite")
    )

    assert worked.returncode == 0, worked.stderr
    assert code == 0
    assert summary.cost is not None
    assert summary.cost.total is not None
    assert summary.cost.total > 0
    assert "cost       USD" in shown
