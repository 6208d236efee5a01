"""Batch watching under leases: services of several processes on one registry (SQLite file, PostgreSQL database)
never poll one batch twice, and a holder that dies or closes loses its batches to the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.leases import BATCH_LEASE_MIN_SECONDS, batch_lease_seconds, is_run_shard
from aoai_batch.models import Batch
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from aoai_batch.store import Store
from tests.support.batch_files import write_batch_file
from tests.support.mcp import WAIT
from tests.support.polls import PollRecorder


class Now:
    """The registry's wall clock, moved by hand (lease expiry)."""

    def __init__(self) -> None:
        self.value = 1_000_000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_settings(request: pytest.FixtureRequest, tmp_path: Path, emulator: Emulator) -> Settings:
    extra: dict[str, Any] = {}
    if request.param == "postgresql":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    return Settings.model_validate(
        {
            "home": tmp_path / "home",
            "provider": "emulator",
            "api_key": emulator.key,
            "workspace": str(tmp_path),
            **extra,
        }
    )


@asynccontextmanager
async def replica(
    settings: Settings, emulator: Emulator, now: Now, **extra: Any
) -> AsyncIterator[tuple[BatchService, PollRecorder]]:
    """A service as one replica opens it: its own connection to the registry and its own lease holder."""
    recorder = PollRecorder(emulator.transport())
    async with BatchService.open(settings, transport=recorder, now=now, **extra) as service:
        yield service, recorder


async def start(service: BatchService, tmp_path: Path, name: str, **create: Any) -> Batch:
    uploaded = await service.upload_file(write_batch_file(tmp_path / f"{name}.jsonl"))
    return await service.create_batch(uploaded.file.id, **create)


def registry(settings: Settings, now: Now) -> Any:
    return Store.open_for(settings, now=now)


async def test_two_replicas_on_one_registry_poll_each_active_batch_once(
    registry_settings: Settings, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    now = Now()
    async with (
        replica(registry_settings, emulator, now) as (a, polls_a),
        replica(registry_settings, emulator, now) as (b, polls_b),
    ):
        batches = [await start(a, tmp_path, f"in{n}") for n in range(3)]
        assert await a.refresh_active() == []
        assert await b.refresh_active() == []
        fake_clock.advance(10_000)
        assert await b.refresh_active() == []
        changed = await a.refresh_active()
    ids = sorted(batch.id for batch in batches)
    assert sorted(batch.id for batch in changed) == ids
    assert all(batch.status == "completed" for batch in changed)
    assert sorted(polls_a.polled) == sorted(ids * 2)
    assert polls_b.polled == []


async def test_a_replica_that_stops_frees_its_batches_for_the_next_poll_of_another(
    registry_settings: Settings, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    now = Now()
    async with replica(registry_settings, emulator, now) as (b, polls_b):
        async with replica(registry_settings, emulator, now) as (a, _):
            batch = await start(a, tmp_path, "in")
            await a.refresh_active()
            assert await b.refresh_active() == []
        fake_clock.advance(10_000)
        changed = await b.refresh_active()
    assert [job.id for job in changed] == [batch.id]
    assert polls_b.polled == [batch.id]


async def test_a_holder_on_another_host_that_went_silent_loses_its_batches_when_the_lease_expires(
    registry_settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    now = Now()
    ttl = batch_lease_seconds(registry_settings.poll_seconds)
    async with replica(registry_settings, emulator, now) as (b, polls_b):
        batch = await start(b, tmp_path, "in")
        async with await registry(registry_settings, now) as store:
            assert await store.take_leases("batch", [batch.id], "elsewhere:4242:dead", ttl=ttl) == {batch.id}
        await b.refresh_active()
        assert polls_b.polled == []
        now.value += ttl
        await b.refresh_active()
    assert polls_b.polled == [batch.id]


async def test_a_terminal_batch_lease_is_released(
    registry_settings: Settings, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    now = Now()
    async with replica(registry_settings, emulator, now) as (a, _), await registry(registry_settings, now) as store:
        batch = await start(a, tmp_path, "in")
        await a.refresh_active()
        held = await store.take_leases("batch", [batch.id], "elsewhere:1:other", ttl=60)
        fake_clock.advance(10_000)
        await a.refresh_active()
        freed = await store.take_leases("batch", [batch.id], "elsewhere:1:other", ttl=60)
    assert held == set()
    assert freed == {batch.id}


async def test_a_runs_shard_batch_is_left_to_its_runs_step(
    registry_settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    now = Now()
    async with replica(registry_settings, emulator, now) as (a, polls):
        shard = await start(a, tmp_path, "shard", metadata={"run_id": "run_1"}, idempotency_key="run_1-s0-a1")
        mine = await start(a, tmp_path, "mine", metadata={"run_id": "run_1"})
        await a.refresh_active()
    assert is_run_shard(shard)
    assert not is_run_shard(mine)
    assert polls.polled == [mine.id]


@pytest.mark.parametrize(
    ("metadata", "shard"),
    [
        ({"run_id": "run_1", "idempotency_key": "run_1-s3-a2"}, True),
        ({"run_id": "run_1"}, False),  # a user's own metadata
        ({"run_id": "run_1", "idempotency_key": "mine"}, False),
        ({"run_id": "run_2", "idempotency_key": "run_1-s3-a2"}, False),
        ({"idempotency_key": "run_1-s3-a2"}, False),
        ({}, False),
    ],
)
def test_a_shard_batch_is_known_by_its_run_id_and_its_key(metadata: dict[str, str], shard: bool) -> None:
    batch = Batch.model_validate(
        {
            "id": "batch_1",
            "status": "in_progress",
            "terminal": False,
            "backend": "emulator",
            "endpoint": "/chat/completions",
            "metadata": metadata,
        }
    )
    assert is_run_shard(batch) is shard


@pytest.mark.parametrize(("poll", "ttl"), [(0.02, BATCH_LEASE_MIN_SECONDS), (60.0, 180.0)])
def test_a_batch_lease_lasts_three_polls_and_at_least_the_minimum(poll: float, ttl: float) -> None:
    assert batch_lease_seconds(poll) == ttl


async def test_on_postgresql_a_change_saved_by_one_replica_is_announced_to_the_others(
    emulator: Emulator, fake_clock: FakeClock, tmp_path: Path, postgres_url: str
) -> None:
    settings = Settings.model_validate(
        {
            "home": tmp_path / "home",
            "provider": "emulator",
            "api_key": emulator.key,
            "workspace": str(tmp_path),
            "database_url": postgres_url,
        }
    )
    now = Now()
    heard: list[tuple[str, str]] = []
    async with (
        replica(settings, emulator, now) as (a, _),
        replica(settings, emulator, now) as (b, _),
        b.changes() as feed,
    ):
        batch = await start(a, tmp_path, "in")
        fake_clock.advance(10_000)
        await a.refresh_active()
        with anyio.fail_after(WAIT):
            async for change in feed:
                heard.append(change)
                if len(heard) == 2:
                    break
    assert heard == [("batch", batch.id), ("batch", batch.id)]  # created, then completed


class Ticking:
    """A monotonic clock that moves `step` seconds at every look (a round of polls that takes long)."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.value = 0.0

    def __call__(self) -> float:
        self.value += self.step
        return self.value


async def test_a_long_round_renews_its_leases_midway_and_keeps_polling_them(
    registry_settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    now = Now()
    ttl = batch_lease_seconds(registry_settings.poll_seconds)
    async with replica(registry_settings, emulator, now, clock=Ticking(ttl)) as (a, polls):
        batches = [await start(a, tmp_path, f"in{n}") for n in range(3)]
        await a.refresh_active()  # every look at the clock says half a lease has gone by: renewed before each poll
        async with await registry(registry_settings, now) as store:
            taken = await store.take_leases("batch", [batch.id for batch in batches], "elsewhere:1:x", ttl=ttl)
    assert sorted(polls.polled) == sorted(batch.id for batch in batches)
    assert taken == set()


async def test_a_batch_another_process_saw_finish_has_its_lease_released_at_the_next_round(
    registry_settings: Settings, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    now = Now()
    async with (
        replica(registry_settings, emulator, now) as (a, polls_a),
        replica(registry_settings, emulator, now) as (b, _),
    ):
        batch = await start(a, tmp_path, "in")
        await a.refresh_active()
        fake_clock.advance(10_000)
        assert (await b.get_batch(batch.id)).terminal  # a user's get_batch on the other replica
        await a.refresh_active()
        async with await registry(registry_settings, now) as store:
            freed = await store.take_leases("batch", [batch.id], "elsewhere:1:x", ttl=60)
    assert freed == {batch.id}
    assert polls_a.polled == [batch.id]
