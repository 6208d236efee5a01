"""A run's life seen from outside: the same key returns the same run, bad input starts nothing, cancel keeps
what finished, waits advance the run, pages list it, and two services on one home never step it together;
on both engines of the registry (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import InvalidInput, InvalidRequest, NotFound, NotReady, UnknownDeployment
from aoai_batch.leases import RUN_LEASE_SECONDS as LEASE_SECONDS
from aoai_batch.leases import holder_is_gone as owner_is_gone
from aoai_batch.leases import new_holder as new_owner
from aoai_batch.runs.models import Run
from aoai_batch.runs.records import RunRecords
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from aoai_batch.store import Store
from tests.support.batch_files import request_line, write_lines
from tests.support.clock import DONE
from tests.support.runs import STEP_SECONDS, ClockedSleep, drive, emulator_batches

MINI = "gpt-4o-mini"


def source(tmp_path: Path, count: int = 25) -> Path:
    return write_lines(tmp_path / "rows.jsonl", *(request_line(f"task-{n}", f"Question {n}?") for n in range(count)))


def run_folders(settings: Settings) -> list[str]:
    folder = settings.home / "runs"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_engine(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both registries (the runs' conftest's `run_settings` reads it)."""
    return str(request.param)


@pytest.fixture
async def registry(run_settings: Settings) -> AsyncIterator[RunRecords]:
    async with await Store.open_for(run_settings) as store:
        yield RunRecords(store)


async def test_the_same_idempotency_key_returns_the_same_run(runs: RunService, tmp_path: Path) -> None:
    first = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path), idempotency_key="nightly-1")
    again = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path), idempotency_key="nightly-1")
    other = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path), idempotency_key="nightly-2")
    assert again.id == first.id
    assert other.id != first.id
    assert again.idempotency_key == "nightly-1"


async def test_bad_input_starts_nothing_and_leaves_nothing(
    runs: RunService, run_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(UnknownDeployment):
        await runs.start_run(deployments=["no-such-deployment"], batch_path=source(tmp_path))
    with pytest.raises(InvalidInput):
        await runs.start_run(deployments=[], batch_path=source(tmp_path))
    with pytest.raises(InvalidInput):
        await runs.start_run(deployments=[MINI], batch_path=source(tmp_path), retries=-1)
    broken = tmp_path / "broken.jsonl"
    await anyio.Path(broken).write_text('{"custom_id": "a"}\nnot json\n')
    with pytest.raises(InvalidInput):
        await runs.start_run(deployments=[MINI], batch_path=broken)
    assert run_folders(run_settings) == []
    assert (await runs.list_runs()).runs == []


async def test_unknown_runs_and_out_of_range_arguments_are_refused(runs: RunService, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await runs.get_run("run_000000000000000000000000")
    with pytest.raises(NotFound):
        await runs.advance("run_000000000000000000000000")
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    with pytest.raises(InvalidInput):
        await runs.get_run(started.id, wait_seconds=51)
    with pytest.raises(InvalidInput):
        await runs.list_runs(limit=0)
    with pytest.raises(NotReady):
        await runs.fetch_run_results(started.id, output_dir=tmp_path / "out")
    assert await runs.results_summary(started.id) is None


async def test_cancel_stops_submitting_cancels_batches_and_keeps_what_finished(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    await runs.advance(started.id)
    fake_clock.advance(DONE)
    await runs.advance(started.id)  # shard 0 collected, shard 1 submitted
    cancelling = await runs.cancel_run(started.id)
    assert cancelling.status == "cancelling"
    assert not cancelling.terminal

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "cancelled"
    assert [shard.state for shard in finished.shards] == ["done", "done", "cancelled"]
    assert finished.shards[1].batch_status == "cancelled"
    assert len(await emulator_batches(emulator)) == 2
    with pytest.raises(InvalidRequest) as refused:
        await runs.cancel_run(started.id)
    assert refused.value.code == "run_not_cancellable"
    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out")
    assert summary.run_status == "cancelled"
    assert summary.counts.succeeded == 10
    assert await runs.results_summary(finished.id) == summary


async def test_a_wait_advances_the_run_until_it_changes(
    runs: RunService, fake_clock: FakeClock, tmp_path: Path
) -> None:
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    messages: list[str | None] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    with anyio.fail_after(20):
        seen = await runs.get_run(started.id, wait_seconds=10, progress=progress)
    assert seen.shards[0].state == "submitted"
    assert messages
    assert all(message and message.startswith(started.id) for message in messages)


async def test_runs_are_listed_newest_first_in_pages(runs: RunService, fake_clock: FakeClock, tmp_path: Path) -> None:
    ids = []
    for n in range(3):
        ids.append((await runs.start_run(deployments=[MINI], batch_path=source(tmp_path, 3), name=f"r{n}")).id)
        fake_clock.advance(1)
    first = await runs.list_runs(limit=2)
    assert [run.id for run in first.runs] == ids[::-1][:2]
    assert first.has_more
    rest = await runs.list_runs(limit=2, after=first.last_id)
    assert [run.id for run in rest.runs] == [ids[0]]
    assert not rest.has_more
    assert [run.id for run in await runs.active_runs()] == ids


async def test_two_services_on_one_home_never_step_one_run_together(
    runs: RunService,
    registry: RunRecords,
    run_settings: Settings,
    main_service: BatchService,
    emulator: Emulator,
    fake_clock: FakeClock,
    tmp_path: Path,
) -> None:
    started = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path))
    # another process (another host, so its liveness cannot be checked) holds the run's lease
    assert await registry.take_lease(started.id, "elsewhere:1:abc", now=fake_clock.now())
    sleep = ClockedSleep(fake_clock)
    async with RunService.open(run_settings, main_service, now=fake_clock.now, sleep=sleep) as second:
        assert (await second.advance(started.id)).shards[0].state == "queued"
        assert (await runs.advance(started.id)).shards[0].state == "queued"
        assert await emulator_batches(emulator) == []
        fake_clock.advance(LEASE_SECONDS + 1)  # the other owner went silent: its lease is taken over
        assert (await second.advance(started.id)).shards[0].state == "submitted"
    assert await registry.take_lease(started.id, "elsewhere:1:abc", now=fake_clock.now())  # released after the step


async def test_the_worker_advances_every_active_run_until_none_is_left(
    run_settings: Settings, main_service: BatchService, fake_clock: FakeClock, tmp_path: Path
) -> None:
    sleep = ClockedSleep(fake_clock, minimum=STEP_SECONDS)  # a worker's pause, long on the emulator's clock
    async with RunService.open(run_settings, main_service, now=fake_clock.now, sleep=sleep) as runs:
        await work_two_runs(runs, fake_clock, tmp_path)


async def work_two_runs(runs: RunService, fake_clock: FakeClock, tmp_path: Path) -> None:
    one = await runs.start_run(deployments=[MINI], batch_path=source(tmp_path, 3))
    fake_clock.advance(1)
    two = await runs.start_run(deployments=["gpt-4o"], batch_path=source(tmp_path, 12))
    changes: list[list[str]] = []

    async def on_change(changed: list[Run]) -> None:
        changes.append([run.id for run in changed])

    with anyio.fail_after(20):
        await runs.work(on_change=on_change)
    assert [run.status for run in [await runs.get_run(one.id), await runs.get_run(two.id)]] == ["completed"] * 2
    assert changes[0] == [one.id, two.id]
    assert await runs.active_runs() == []


def test_a_lease_held_by_a_process_of_this_host_that_died_is_free() -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead, host = int(ended.stdout), socket.gethostname()
    assert owner_is_gone(f"{host}:{dead}:abcd1234")
    assert not owner_is_gone(f"{host}:{os.getpid()}:abcd1234")  # this process
    assert not owner_is_gone(f"{host}:1:abcd1234")  # pid 1 always runs
    assert not owner_is_gone(f"elsewhere:{dead}:abcd1234")  # another host's processes cannot be seen
    assert not owner_is_gone("not an owner")
    assert new_owner().startswith(f"{host}:{os.getpid()}:")
