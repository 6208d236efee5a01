"""A shard whose batch fails in validation with token_limit_exceeded (the emulator's fault) is queued again
after a backoff and resubmitted under a new attempt's key; per-request failures go into retry shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.scheduler import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, backoff_seconds
from aoai_batch.runs.service import RunService
from aoai_batch.settings import EmulatorSettings
from tests.support.batch_files import request_line, write_lines
from tests.support.runs import drive, emulator_batches, result_rows


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    """Half the creates end in validation with token_limit_exceeded; request ids failing on purpose (500)."""
    return EmulatorSettings(
        home=tmp_path / "emulator",
        time_scale=1.0,
        key="test-key",
        faults="token_limit_exceeded:0.5",
        fault_seed=3,
        fail_rate=0.2,
    )


def source(tmp_path: Path, count: int = 25) -> Path:
    return write_lines(tmp_path / "rows.jsonl", *(request_line(f"task-{n}", f"Question {n}?") for n in range(count)))


def test_the_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    assert backoff_seconds(0, 1.0) == BACKOFF_BASE_SECONDS
    assert backoff_seconds(0, 0.0) == BACKOFF_BASE_SECONDS / 2
    assert backoff_seconds(2, 1.0) == 4 * BACKOFF_BASE_SECONDS
    assert backoff_seconds(40, 1.0) == BACKOFF_CAP_SECONDS
    assert backoff_seconds(40, 0.5) == 0.75 * BACKOFF_CAP_SECONDS


async def test_a_refused_shard_backs_off_and_is_resubmitted_never_twice_per_attempt(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source(tmp_path), retries=0)
    refused = None
    for _ in range(20):
        run = await runs.advance(started.id)
        refused = next((s for s in run.shards if s.state == "queued" and s.next_try_at is not None), None)
        if refused is not None:
            break
        fake_clock.advance(600)
    assert refused is not None, "the seeded faults refuse at least one create"
    assert refused.error is not None
    assert refused.error.startswith("token_limit_exceeded: ")
    wait = refused.next_try_at.timestamp() - fake_clock.now()  # type: ignore[union-attr]
    assert BACKOFF_BASE_SECONDS / 2 <= wait <= BACKOFF_CAP_SECONDS
    assert run.waiting_for is not None

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "completed"
    batches = [await emulator.operations.get_batch(batch_id) for batch_id in await emulator_batches(emulator)]
    metadata = [batch.metadata or {} for batch in batches]
    keys = [data["idempotency_key"] for data in metadata]
    assert len(keys) == len(set(keys))  # one batch per shard attempt
    assert len(batches) == sum(shard.attempt for shard in finished.shards)
    assert sum(batch.status == "failed" for batch in batches) >= 1
    assert {data["run_id"] for data in metadata} == {started.id}


async def test_requests_failed_for_a_retryable_cause_are_resubmitted_up_to_retries(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source(tmp_path), retries=1)

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "completed"
    retry_shards = [shard for shard in finished.shards if shard.kind == "retry"]
    assert retry_shards, "the emulator's fail rate fails some ids with a server error"
    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out")
    rows = result_rows(summary.results_path)
    assert [row["custom_id"] for row in rows] == [f"task-{n}" for n in range(25)]
    failed = [row for row in rows if row["status"] == "failed"]
    assert failed  # the same ids fail again: retries=1 resubmits them once, no more
    assert {row["attempts"] for row in failed} == {2}
    assert sum(shard.requests for shard in retry_shards) == len(failed)
    assert {row["attempts"] for row in rows if row["status"] == "succeeded"} == {1}
    assert finished.request_counts.failed == len(failed)
    assert finished.request_counts.completed == 25 - len(failed)
