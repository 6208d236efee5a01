"""Changes made by another process on the registry reach this server's subscribers: what the fan-out hears
(PostgreSQL's NOTIFY) and what the runs watcher reads (a run another process stepped to its end)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from server.fanout import Fanout
from server.runs_watcher import RUNS_URI, RunsWatcher, run_uri
from server.service_handle import ServiceHandle
from server.subscriptions import Subscriptions
from server.watcher import JOBS_URI, Watcher, job_uri
from tests.support.batch_files import write_workspace_batch
from tests.support.mcp import POLL, WAIT, make_settings
from tests.support.runs import SHARD_REQUESTS, drive

PROMPTS = [f"question {n}" for n in range(2 * SHARD_REQUESTS)]


class Recorded(Subscriptions):
    """The server's subscriptions, keeping what they were told to announce."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[str] = []

    async def resource_updated(self, uri: str) -> None:
        self.told.append(uri)
        await super().resource_updated(uri)

    async def resources_changed(self) -> None:
        self.told.append(JOBS_URI)
        await super().resources_changed()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_requests=SHARD_REQUESTS)


@asynccontextmanager
async def server_parts(settings: Settings, emulator: Emulator) -> AsyncIterator[tuple[Fanout, Watcher, Recorded]]:
    """What the server's lifespan builds: the service handle, both watchers, the fan-out."""
    subscriptions = Recorded()
    services = ServiceHandle(settings, emulator.transport())
    watcher = Watcher(services, subscriptions, interval=POLL, first_delay=0)
    runs_watcher = RunsWatcher(services, subscriptions, interval=POLL, first_delay=0)
    async with anyio.create_task_group() as group:
        services.start(group)
        try:
            yield Fanout(services, watcher, runs_watcher, first_delay=0), watcher, subscriptions
        finally:
            services.close()


@asynccontextmanager
async def another_process(settings: Settings, emulator: Emulator) -> AsyncIterator[tuple[BatchService, RunService]]:
    async with BatchService.open(settings, emulator.transport()) as service, RunService.open(settings, service) as runs:
        yield service, runs


async def test_a_batch_another_replica_announces_is_told_to_subscribers_here(
    settings: Settings, emulator: Emulator, fake_clock: FakeClock
) -> None:
    async with (
        server_parts(settings, emulator) as (fanout, watcher, told),
        another_process(settings, emulator) as (
            other,
            _,
        ),
    ):
        await watcher.poll_once()  # the jobs this server knows: none
        path = write_workspace_batch(settings.workspace_dirs[0])
        created = await other.create_batch((await other.upload_file(path)).file.id)
        await fanout.heard("batch", created.id)  # new here: the job list changed
        fake_clock.advance(10_000)
        await other.refresh_active()
        await fanout.heard("batch", created.id)  # its status changed
        await fanout.heard("batch", created.id)  # said once only
    assert told.told == [JOBS_URI, job_uri(created.id)]


async def test_a_run_another_replica_announces_is_told_to_subscribers_here(
    settings: Settings, emulator: Emulator
) -> None:
    async with server_parts(settings, emulator) as (fanout, _, told), another_process(settings, emulator) as (_, runs):
        run = await runs.start_run(deployments=["gpt-4o-mini"], prompts=PROMPTS)
        await fanout.heard("run", run.id)
    assert told.told == [run_uri(run.id), RUNS_URI]


@pytest.mark.parametrize(("kind", "job_id"), [("batch", "batch_unknown"), ("run", "run_unknown"), ("file", "x")])
async def test_an_announced_job_this_registry_does_not_hold_is_passed_over(
    settings: Settings, emulator: Emulator, kind: str, job_id: str
) -> None:
    async with server_parts(settings, emulator) as (fanout, _, told):
        await fanout.heard(kind, job_id)
    assert told.told == []


async def test_the_runs_watcher_tells_of_a_run_another_process_took_to_its_end(
    settings: Settings, emulator: Emulator, fake_clock: FakeClock
) -> None:
    subscriptions = Recorded()
    services = ServiceHandle(settings, emulator.transport())
    watcher = RunsWatcher(services, subscriptions, interval=POLL, first_delay=0)
    async with anyio.create_task_group() as group:
        services.start(group)
        try:
            async with another_process(settings, emulator) as (_, runs):
                run = await runs.start_run(deployments=["gpt-4o-mini"], prompts=PROMPTS)
                await watcher.step_once()  # this server's step: under way
                done = await drive(runs, fake_clock, run.id)  # the other process takes it to its end
            changed = await watcher.step_once()
        finally:
            services.close()
    assert done.status == "completed"
    assert [(job.id, job.status) for job in changed] == [(run.id, "completed")]


async def test_the_fanout_stops_saying_why_when_the_service_cannot_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path, provider="azure", endpoint="https://x.openai.azure.com", api_key=None, auth="key"
    )
    services = ServiceHandle(settings)
    fanout = Fanout(services, *_watchers(services), first_delay=0)
    async with anyio.create_task_group() as group:
        services.start(group)
        with anyio.fail_after(WAIT):
            await fanout.run()
        services.close()
    assert "listening for other replicas' changes stopped" in caplog.text


def _watchers(services: ServiceHandle) -> tuple[Watcher, RunsWatcher]:
    subscriptions = Subscriptions()
    return (
        Watcher(services, subscriptions, interval=POLL, first_delay=0),
        RunsWatcher(services, subscriptions, interval=POLL, first_delay=0),
    )
