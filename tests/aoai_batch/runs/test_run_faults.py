"""Runs through a service that fails some requests (503, dropped connections) and one whose batches expire:
a failed look or submit is tried again at the next step; requests an expired shard never ran are retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aoai_batch.client import BatchClient, emulator_connection
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import EmulatorSettings, Settings, file_rules
from aoai_batch.store import Store
from tests.support.batch_files import request_line, write_lines
from tests.support.runs import ClockedSleep, drive, emulator_batches, result_rows

REQUESTS = 20  # two shards of 10: at 4 h a request, each is half done when its 24 h window ends


@pytest.fixture
async def main_service(
    run_settings: Settings, emulator: Emulator, fake_clock: FakeClock
) -> AsyncIterator[BatchService]:
    """The service with the SDK's own retries off: every fault reaches the run's scheduler (and no real sleep)."""
    sleep = ClockedSleep(fake_clock)
    connection = emulator_connection(emulator.key, api_version=run_settings.api_version)
    async with (
        await Store.open_for(run_settings, now=fake_clock.now) as store,
        BatchClient(connection, transport=emulator.transport(), sleep=sleep, max_retries=0) as client,
    ):
        yield BatchService(
            run_settings,
            client,
            store,
            rules=file_rules(run_settings),
            sleep=sleep,
            clock=fake_clock.now,
            now=fake_clock.now,
        )


@pytest.fixture(params=["flaky", "slow"])
def emulator_settings(tmp_path: Path, request: pytest.FixtureRequest) -> EmulatorSettings:
    """`flaky`: a share of requests answered 503 or cut; `slow`: a batch takes longer than its 24 h window."""
    if request.param == "flaky":
        return EmulatorSettings(
            home=tmp_path / "emulator", time_scale=1.0, key="test-key", faults="503:0.2,drop:0.1", fault_seed=7
        )
    return EmulatorSettings(
        home=tmp_path / "emulator",
        time_scale=1.0,
        key="test-key",
        seconds_per_request=4 * 3600.0,
        max_processing_seconds=30 * 86_400.0,
    )


async def test_a_run_ends_with_every_row_whatever_the_service_does(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    source = write_lines(
        tmp_path / "rows.jsonl", *(request_line(f"task-{n}", f"Question {n}?") for n in range(REQUESTS))
    )
    started = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source, retries=1)

    finished = await drive(runs, fake_clock, started.id, step_seconds=3600)

    assert finished.status == "completed"
    keys = [(await emulator.operations.get_batch(batch_id)).metadata for batch_id in await emulator_batches(emulator)]
    idempotency_keys = [(metadata or {})["idempotency_key"] for metadata in keys]
    assert len(idempotency_keys) == len(set(idempotency_keys))
    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out")
    rows = result_rows(summary.results_path)
    assert [row["custom_id"] for row in rows] == [f"task-{n}" for n in range(REQUESTS)]
    if emulator.settings.seconds_per_request > 3600:  # slow: each shard expired part-way
        assert {shard.batch_status for shard in finished.shards if shard.kind == "input"} == {"expired"}
        retried = sum(shard.requests for shard in finished.shards if shard.kind == "retry")
        assert retried == sum(row["attempts"] == 2 for row in rows) > 0  # what never ran went again, once
        assert {row["status"] for row in rows if row["attempts"] == 2} == {"succeeded"}
    else:
        assert {row["status"] for row in rows} == {"succeeded"}
