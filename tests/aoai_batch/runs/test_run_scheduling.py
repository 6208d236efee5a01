"""The scheduler under the enqueued-token quota: one shard at a time when no limit is known, spill-over to
the next deployment, a shard split when a learned limit can never hold it, a run failed when nothing can."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.models import Run
from aoai_batch.runs.records import LearnedLimit, RunRecords
from aoai_batch.runs.service import RunService
from aoai_batch.settings import Settings
from aoai_batch.store import Store
from tests.support.batch_files import jsonl, request_line, write_lines
from tests.support.runs import drive, emulator_batches, result_rows

MINI, FOUR_O = "gpt-4o-mini", "gpt-4o"


@pytest.fixture
async def registry(run_settings: Settings) -> AsyncIterator[RunRecords]:
    """The runs' tables, opened beside the service as another process would."""
    async with await Store.open_for(run_settings) as store:
        yield RunRecords(store)


def source(tmp_path: Path, count: int = 25) -> Path:
    return write_lines(tmp_path / "rows.jsonl", *(request_line(f"task-{n}", f"Question {n}?") for n in range(count)))


async def learn(registry: RunRecords, deployment: str, limit: int) -> None:
    await registry.learn_limit(LearnedLimit(deployment, limit, f"the configured limit of {limit}", 0.0))


def shard_lines(run: Run, index: int, attempt: int = 1) -> list[dict[str, object]]:
    path = Path(run.input_path).parent / f"shard-{index:04d}-a{attempt}.jsonl"
    return jsonl(path.read_bytes())


async def test_with_no_known_limit_one_shard_is_in_flight_per_deployment(
    runs: RunService, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    run = await runs.advance(started.id)
    assert [shard.state for shard in run.shards] == ["submitted", "queued", "queued"]
    assert run.waiting_for == f"2 shards queued: {MINI} has 1 shard in flight (limit unknown: one at a time)"
    assert run.ledger[0].shards_in_flight == 1
    assert run.ledger[0].in_flight_tokens == run.shards[0].estimated_tokens
    finished = await drive(runs, fake_clock, started.id)
    assert finished.status == "completed"


async def test_a_shard_spills_to_the_next_deployment_when_the_first_is_full(
    runs: RunService, registry: RunRecords, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=[MINI, FOUR_O], batch_path=source(tmp_path))
    biggest = max(shard.estimated_tokens for shard in started.shards)
    await learn(registry, MINI, biggest)
    await learn(registry, FOUR_O, biggest)

    run = await runs.advance(started.id)

    assert [(shard.state, shard.deployment) for shard in run.shards] == [
        ("submitted", MINI),
        ("submitted", FOUR_O),
        ("queued", None),
    ]
    assert {line["body"]["model"] for line in shard_lines(run, 1)} == {FOUR_O}  # type: ignore[index]
    assert run.waiting_for is not None
    assert run.waiting_for.startswith(f"1 shard queued: {MINI} has ")
    assert [load.limit_source for load in run.ledger] == ["learned", "learned"]
    finished = await drive(runs, fake_clock, started.id)
    assert finished.status == "completed"
    assert len(await emulator_batches(emulator)) == 3


async def test_a_shard_no_limit_can_hold_is_split_and_its_rows_all_come_back(
    runs: RunService, registry: RunRecords, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    first = started.shards[0]
    await learn(registry, MINI, first.estimated_tokens // 2 + 5)

    run = await runs.advance(started.id)

    parent = run.shards[0]
    assert parent.state == "cancelled"
    assert parent.error is not None
    assert parent.error.startswith("split: into shards 3-")
    assert run.shard_counts["cancelled"] == 2  # the two shards of 10 requests; the last one (5) fits
    assert sum(shard.requests for shard in run.shards if shard.state != "cancelled") == 25
    assert all(shard.estimated_tokens <= first.estimated_tokens // 2 + 5 for shard in run.shards[3:])
    finished = await drive(runs, fake_clock, started.id)
    assert finished.status == "completed"
    assert finished.request_counts.completed == 25
    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out")
    rows = result_rows(summary.results_path)
    assert [row["custom_id"] for row in rows] == [f"task-{n}" for n in range(25)]
    assert {row["status"] for row in rows} == {"succeeded"}


async def test_a_request_over_every_limit_fails_the_run_and_keeps_what_finished(
    runs: RunService, registry: RunRecords, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    await learn(registry, MINI, 1)

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "failed"
    assert finished.errors
    assert all("token_limit_exceeded" in error for error in finished.errors)
    assert await emulator_batches(emulator) == []


async def test_a_shard_the_service_refuses_fails_the_run_and_nothing_more_is_sent(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    emulator.settings.max_bytes = 600  # this resource takes smaller files than the settings say
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "failed"
    assert [shard.state for shard in finished.shards] == ["failed", "cancelled", "cancelled"]
    assert len(finished.errors) == 1
    assert finished.errors[0].startswith("shard 0: ")
    assert finished.shards[1].error == "not submitted: the run failed"
    assert await emulator_batches(emulator) == []
    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out")
    assert summary.counts.missing == 25


async def test_a_run_whose_input_was_removed_fails_saying_so(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    await anyio.Path(started.input_path).unlink()

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "failed"
    assert started.input_path in finished.errors[0]
    assert await emulator_batches(emulator) == []
