"""runs/retry.py and runs/merge.py on real shard results: shard files joined by the real `join_results`."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aoai_batch.errors import InvalidInput
from aoai_batch.results.join import join_results
from aoai_batch.runs.merge import ShardResults, merge_run_results
from aoai_batch.runs.plan import ShardRange, plan_shards, prepare_run_input, write_shard
from aoai_batch.runs.retry import is_retryable, is_retryable_code, write_retry_shard
from aoai_batch.validation import validate_file


def answer(custom_id: str, text: str) -> dict[str, Any]:
    body = {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    return {"custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}


def failure(custom_id: str, code: str, status: int = 400) -> dict[str, Any]:
    body = {"error": {"code": code, "message": f"{code} happened"}}
    return {"custom_id": custom_id, "response": {"status_code": status, "body": body}, "error": None}


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))
    return path


def ids_of(path: Path) -> list[str]:
    return [orjson.loads(line)["custom_id"] for line in path.read_bytes().splitlines()]


@dataclass
class Run:
    """A run's folder: its input, and shards collected as the scheduler would (shard file, then results)."""

    folder: Path
    input_path: Path
    source_path: Path | None = None
    parts: list[ShardResults] = field(default_factory=list)

    def collect(
        self,
        shard_file: Path,
        outcomes: dict[str, dict[str, Any]],
        *,
        kind: str,
        attempt: int,
        first_line: int = 0,
    ) -> Path:
        """Join `shard_file` with its answers (missing ids: no line), keep the part, return its results."""
        name = shard_file.stem
        answers = [
            line for line in outcomes.values() if line.get("error") is None and line["response"]["status_code"] == 200
        ]
        errors = [line for line in outcomes.values() if line not in answers]
        output = write_jsonl(self.folder / f"{name}.out.jsonl", answers)
        error_path = write_jsonl(self.folder / f"{name}.err.jsonl", errors)
        results = self.folder / f"{name}-results.jsonl"
        join_results(
            shard_file,
            output_path=output,
            error_path=error_path,
            results_path=results,
            retry_path=self.folder / f"{name}-retry.jsonl",
            overwrite=True,
        )
        self.parts.append(
            ShardResults(
                kind=kind,  # type: ignore[arg-type]
                results_path=results,
                errors_path=error_path,
                batch_id=f"batch_{name}",
                attempt=attempt,
                first_line=first_line,
            )
        )
        return results


def start(tmp_path: Path, count: int, *, rows: bool = False) -> Run:
    folder = tmp_path / "run"
    if rows:
        source = tmp_path / "rows.csv"
        with source.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text", "status"])
            writer.writerows([f"r{n}", f"=text {n}", f"s{n}"] for n in range(count))
        prepared = prepare_run_input(folder, deployment="dep-a", source_path=source, template="{text}", id_field="id")
        return Run(folder, prepared.input_path, source)
    prepared = prepare_run_input(folder, deployment="dep-a", prompts=[f"q{n}" for n in range(count)])
    return Run(folder, prepared.input_path)


def shard_files(run: Run, max_requests: int) -> list[tuple[ShardRange, Path]]:
    shards = plan_shards(run.input_path, max_requests=max_requests, max_bytes=10**8, max_tokens=None)
    files = []
    for index, shard in enumerate(shards):
        path = run.folder / f"shard-{index:04d}-a1.jsonl"
        write_shard(run.input_path, shard, path, deployment="dep-b" if index % 2 else "dep-a")
        files.append((shard, path))
    return files


# --- retry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("rate_limit_exceeded", True),
        ("429", True),
        ("http_429", True),
        ("http_503", True),
        ("server_error", True),
        ("internal_error", True),
        ("timeout", True),
        ("request_timeout", True),
        ("invalid_request", False),
        ("content_filter", False),
        ("http_400", False),
        (None, False),
    ],
)
def test_which_codes_are_retryable(code: str | None, retryable: bool) -> None:
    assert is_retryable_code(code) is retryable
    row = {"status": "failed", "error": {"code": code}}
    assert is_retryable(row, batch_status="completed", cancelled_by_user=False) is retryable


def test_missing_rows_are_retried_only_when_the_service_ended_the_batch() -> None:
    missing = {"status": "missing", "error": None}
    assert is_retryable(missing, batch_status="expired", cancelled_by_user=False)
    assert is_retryable(missing, batch_status="cancelled", cancelled_by_user=False)
    assert not is_retryable(missing, batch_status="cancelled", cancelled_by_user=True)
    assert not is_retryable(missing, batch_status="completed", cancelled_by_user=False)
    assert not is_retryable({"status": "succeeded"}, batch_status="expired", cancelled_by_user=False)


def test_a_retry_shard_holds_the_retryable_lines_for_its_deployment(tmp_path: Path) -> None:
    run = start(tmp_path, 6)
    [(_, shard_file)] = shard_files(run, 10)
    ids = ids_of(shard_file)
    outcomes = {
        ids[0]: answer(ids[0], "ok"),
        ids[1]: failure(ids[1], "429", 429),
        ids[2]: failure(ids[2], "invalid_request"),
        ids[3]: failure(ids[3], "server_error", 500),
        # ids[4], ids[5]: missing (the batch expired)
    }
    results = run.collect(shard_file, outcomes, kind="input", attempt=1)

    retry = write_retry_shard(
        results,
        shard_file,
        run.folder / "shard-0001-a2.jsonl",
        batch_status="expired",
        cancelled_by_user=False,
        deployment="dep-c",
    )

    assert retry is not None
    assert ids_of(retry.path) == [ids[1], ids[3], ids[4], ids[5]]
    assert (retry.requests, retry.custom_ids_count, retry.bytes) == (4, 4, retry.path.stat().st_size)
    report = validate_file(retry.path, max_requests=100, max_bytes=10**6, exact_tokens=False)
    assert report.ok
    assert report.deployment == "dep-c"
    assert retry.estimated_tokens == report.estimated_input_tokens


def test_no_retry_shard_when_nothing_is_retryable(tmp_path: Path) -> None:
    run = start(tmp_path, 2)
    [(_, shard_file)] = shard_files(run, 10)
    ids = ids_of(shard_file)
    results = run.collect(shard_file, {ids[0]: answer(ids[0], "a")}, kind="input", attempt=1)
    dest = run.folder / "retry.jsonl"

    assert (
        write_retry_shard(results, shard_file, dest, batch_status="cancelled", cancelled_by_user=True, deployment="d")
        is None
    )
    assert not dest.exists()


def test_results_of_another_shard_are_refused(tmp_path: Path) -> None:
    run = start(tmp_path, 4)
    (_, first), (_, second) = shard_files(run, 2)
    results = run.collect(first, {}, kind="input", attempt=1)
    with pytest.raises(InvalidInput, match="does not line up"):
        write_retry_shard(
            results, second, run.folder / "r.jsonl", batch_status="expired", cancelled_by_user=False, deployment="d"
        )


# --- merge ---------------------------------------------------------------------------------------


def test_one_file_in_input_order_with_the_latest_attempt_of_every_retried_request(tmp_path: Path) -> None:
    run = start(tmp_path, 9)
    files = shard_files(run, 3)
    all_ids = ids_of(run.input_path)
    # Collected out of order: shard 2, then 0, then 1.
    for shard, path in (files[2], files[0], files[1]):
        ids = ids_of(path)
        outcomes = {cid: answer(cid, f"a:{cid}") for cid in ids}
        if shard.first_line == 3:
            outcomes[ids[1]] = failure(ids[1], "429", 429)
            del outcomes[ids[2]]  # missing: the batch expired
        run.collect(path, outcomes, kind="input", attempt=1, first_line=shard.first_line)
    middle = run.parts[-1]
    retry1 = write_retry_shard(
        middle.results_path,
        files[1][1],
        run.folder / "retry-a2.jsonl",
        batch_status="expired",
        cancelled_by_user=False,
        deployment="dep-a",
    )
    assert retry1 is not None
    retried = ids_of(retry1.path)
    run.collect(
        retry1.path,
        {retried[0]: failure(retried[0], "server_error", 500), retried[1]: answer(retried[1], "late")},
        kind="retry",
        attempt=2,
    )
    retry2 = write_retry_shard(
        run.parts[-1].results_path,
        retry1.path,
        run.folder / "retry-a3.jsonl",
        batch_status="completed",
        cancelled_by_user=False,
        deployment="dep-b",
    )
    assert retry2 is not None
    run.collect(retry2.path, {retried[0]: answer(retried[0], "third time")}, kind="retry", attempt=3)

    summary = merge_run_results(
        run.parts,
        input_path=run.input_path,
        source_path=None,
        output_dir=tmp_path / "out",
        format="jsonl",
        preview=2,
        overwrite=False,
        run_id="run_abc",
        run_status="completed",
    )

    assert summary.results_path is not None
    rows = [orjson.loads(line) for line in Path(summary.results_path).read_bytes().splitlines()]
    assert [row["custom_id"] for row in rows] == all_ids
    assert {row["status"] for row in rows} == {"succeeded"}
    by_id = {row["custom_id"]: row for row in rows}
    assert by_id[retried[0]]["content"] == "third time"
    assert (by_id[retried[0]]["attempts"], by_id[retried[0]]["batch_id"]) == (3, "batch_retry-a3")
    assert (by_id[retried[1]]["attempts"], by_id[retried[1]]["content"]) == (2, "late")
    assert (by_id[all_ids[0]]["attempts"], by_id[all_ids[0]]["batch_id"]) == (1, "batch_shard-0000-a1")
    assert summary.counts.succeeded == 9
    assert summary.retried == 2
    assert summary.shards == 5
    assert summary.usage.total_tokens == 9 * 5
    assert summary.retry_path is None
    assert [row.custom_id for row in summary.preview] == all_ids[:2]
    assert summary.preview[0].batch_id == "batch_shard-0000-a1"
    assert summary.errors_path is not None
    raw_errors = [orjson.loads(line) for line in Path(summary.errors_path).read_bytes().splitlines()]
    assert len(raw_errors) == 2  # the 429 of attempt 1 and the 500 of attempt 2, as the service wrote them


def test_what_still_failed_or_never_ran_is_counted_and_goes_to_a_valid_retry_file(tmp_path: Path) -> None:
    run = start(tmp_path, 6)
    files = shard_files(run, 3)
    _, path = files[0]
    ids = ids_of(path)
    run.collect(path, {ids[0]: answer(ids[0], "x"), ids[1]: failure(ids[1], "content_filter")}, kind="input", attempt=1)
    # the second shard never ran: the run was cancelled before it was submitted

    summary = merge_run_results(
        run.parts,
        input_path=run.input_path,
        source_path=None,
        output_dir=tmp_path / "out",
        format="jsonl",
        preview=0,
        overwrite=False,
        run_id="run_x",
        run_status="cancelled",
    )

    assert (summary.counts.succeeded, summary.counts.failed, summary.counts.missing) == (1, 1, 4)
    assert summary.failures_by_code == {"content_filter": 1}
    assert summary.failed_ids == ids_of(run.input_path)[1:]
    assert summary.retry_path is not None
    assert ids_of(Path(summary.retry_path)) == ids_of(run.input_path)[1:]
    assert validate_file(Path(summary.retry_path), max_requests=100, max_bytes=10**6).ok
    assert summary.note is not None
    assert "cancelled" in summary.note
    rows = [orjson.loads(line) for line in Path(str(summary.results_path)).read_bytes().splitlines()]
    assert rows[4] == {
        "custom_id": ids_of(run.input_path)[4],
        "status": "missing",
        "input": "q4",
        "content": None,
        "finish_reason": None,
        "usage": None,
        "error": None,
        "batch_id": None,
        "attempts": 0,
    }


def test_merge_never_overwrites_unless_asked(tmp_path: Path) -> None:
    run = start(tmp_path, 2)
    [(_, path)] = shard_files(run, 5)
    run.collect(path, {}, kind="input", attempt=1)
    kwargs: dict[str, Any] = {
        "input_path": run.input_path,
        "source_path": None,
        "output_dir": tmp_path / "out",
        "format": "jsonl",
        "preview": 0,
        "run_id": "run_y",
        "run_status": "completed",
    }
    first = merge_run_results(run.parts, overwrite=False, **kwargs)
    second = merge_run_results(run.parts, overwrite=False, **kwargs)
    again = merge_run_results(run.parts, overwrite=True, **kwargs)

    assert first.results_path == str(tmp_path / "out" / "run_y-results.jsonl")
    assert second.results_path == str(tmp_path / "out" / "run_y-results-2.jsonl")
    assert again.results_path == first.results_path
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []
    with pytest.raises(InvalidInput):
        merge_run_results(run.parts, overwrite=False, **{**kwargs, "format": "xml"})
    with pytest.raises(InvalidInput):
        merge_run_results(run.parts, overwrite=False, **{**kwargs, "preview": 21})


def test_a_run_from_rows_gets_its_source_columns_back_in_csv_and_jsonl(tmp_path: Path) -> None:
    run = start(tmp_path, 4, rows=True)
    [(_, path)] = shard_files(run, 10)
    ids = ids_of(path)
    run.collect(path, {cid: answer(cid, f"=answer {cid}") for cid in ids}, kind="input", attempt=1)
    common: dict[str, Any] = {
        "input_path": run.input_path,
        "source_path": run.source_path,
        "output_dir": tmp_path / "out",
        "preview": 1,
        "overwrite": False,
        "run_id": "run_rows",
        "run_status": "completed",
    }

    as_csv = merge_run_results(run.parts, format="csv", **common)
    as_jsonl = merge_run_results(run.parts, format="jsonl", **common)

    table = list(csv.reader(io.StringIO(Path(str(as_csv.results_path)).read_text(encoding="utf-8"))))
    header = table[0]
    assert header[-5:] == ["batch_id", "attempts", "id", "text", "source_status"]
    first = dict(zip(header, table[1], strict=True))
    assert (first["custom_id"], first["status"], first["content"]) == ("r0", "succeeded", "'=answer r0")
    assert (first["text"], first["source_status"], first["attempts"]) == ("'=text 0", "s0", "1")
    rows = [orjson.loads(line) for line in Path(str(as_jsonl.results_path)).read_bytes().splitlines()]
    assert rows[3]["source"] == {"id": "r3", "text": "=text 3", "status": "s3"}
    assert as_jsonl.preview[0].source == {"id": "r0", "text": "=text 0", "status": "s0"}
    assert as_jsonl.note is None


def test_a_source_changed_since_the_run_started_is_said_not_joined(tmp_path: Path) -> None:
    run = start(tmp_path, 3, rows=True)
    [(_, path)] = shard_files(run, 10)
    run.collect(path, {}, kind="input", attempt=1)
    assert run.source_path is not None
    run.source_path.write_text("id,text,status\nother,row,here\n")

    summary = merge_run_results(
        run.parts,
        input_path=run.input_path,
        source_path=run.source_path,
        output_dir=tmp_path / "out",
        format="jsonl",
        preview=0,
        overwrite=False,
        run_id="run_z",
        run_status="completed",
    )

    rows = [orjson.loads(line) for line in Path(str(summary.results_path)).read_bytes().splitlines()]
    assert "source" not in rows[0]
    assert summary.note is not None
    assert "changed since" in summary.note


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(1, 30),
    per_shard=st.integers(1, 7),
    fates=st.lists(st.sampled_from(["ok", "fail", "missing", "retry-ok", "retry-fail"]), min_size=30, max_size=30),
    data=st.data(),
)
def test_merge_gives_every_input_request_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, count: int, per_shard: int, fates: list[str], data: st.DataObject
) -> None:
    run = start(tmp_path_factory.mktemp("prop"), count)
    files = shard_files(run, per_shard)
    order = data.draw(st.permutations(list(range(len(files)))))
    expected: dict[str, tuple[str, int]] = {}
    for index in order:
        shard, path = files[index]
        ids = ids_of(path)
        outcomes: dict[str, dict[str, Any]] = {}
        for offset, cid in enumerate(ids):
            fate = fates[shard.first_line + offset]
            if fate == "ok":
                outcomes[cid] = answer(cid, "a")
            elif fate == "fail":
                outcomes[cid] = failure(cid, "invalid_request")
            elif fate.startswith("retry"):
                outcomes[cid] = failure(cid, "429", 429)
        results = run.collect(path, outcomes, kind="input", attempt=1, first_line=shard.first_line)
        retry = write_retry_shard(
            results,
            path,
            run.folder / f"retry-{index}.jsonl",
            batch_status="completed",
            cancelled_by_user=False,
            deployment="dep-a",
        )
        if retry is not None:
            again = {
                cid: answer(cid, "b") for cid in ids_of(retry.path) if fates[int(cid.split("-")[1]) - 1] == "retry-ok"
            }
            run.collect(retry.path, again, kind="retry", attempt=2)
        for offset, cid in enumerate(ids):
            fate = fates[shard.first_line + offset]
            status = {"ok": "succeeded", "fail": "failed", "missing": "missing", "retry-ok": "succeeded"}.get(
                fate, "missing"
            )
            expected[cid] = (status, 2 if fate.startswith("retry") else 1)

    summary = merge_run_results(
        run.parts,
        input_path=run.input_path,
        source_path=None,
        output_dir=run.folder / "out",
        format="jsonl",
        preview=0,
        overwrite=True,
        run_id="run_p",
        run_status="completed",
    )

    rows = [orjson.loads(line) for line in Path(str(summary.results_path)).read_bytes().splitlines()]
    assert [row["custom_id"] for row in rows] == ids_of(run.input_path)
    assert {row["custom_id"]: (row["status"], row["attempts"]) for row in rows} == expected


def test_input_shards_in_order_need_no_first_line_and_a_shard_never_collected_is_missing(tmp_path: Path) -> None:
    run = start(tmp_path, 9)
    files = shard_files(run, 3)
    for index in (0, 2):  # the middle shard was never collected
        _, path = files[index]
        run.collect(path, {cid: answer(cid, "a") for cid in ids_of(path)}, kind="input", attempt=1)

    summary = merge_run_results(
        run.parts,
        input_path=run.input_path,
        source_path=None,
        output_dir=tmp_path / "out",
        format="jsonl",
        preview=0,
        overwrite=False,
        run_id="run_gap",
        run_status="failed",
    )

    rows = [orjson.loads(line) for line in Path(str(summary.results_path)).read_bytes().splitlines()]
    assert [row["status"] for row in rows] == ["succeeded"] * 3 + ["missing"] * 3 + ["succeeded"] * 3
    assert [row["batch_id"] for row in rows[6:]] == ["batch_shard-0002-a1"] * 3
    assert summary.counts.missing == 3
