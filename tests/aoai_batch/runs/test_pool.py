"""The pool: two standalone emulators on loopback stand in for two more Azure resources, each with its own
enqueued-token quota, beside this server's own (the in-process emulator). Each deployment is reached through
its own service, and every service shares the one registry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.lowlevel
import openai
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import AuthenticationFailed, InvalidInput, InvalidRequest, UnknownDeployment
from aoai_batch.quota import TOKEN_LIMIT_EXCEEDED
from aoai_batch.runs.pool import DEFAULT_RESOURCE, PoolDeployment, ServicePool
from aoai_batch.service import BatchService
from aoai_batch.settings import EmulatorSettings, Settings
from aoai_batch.store import Store
from tests.support.batch_files import write_batch_file
from tests.support.clients import azure_client
from tests.support.clock import DONE
from tests.support.http_server import EmulatorServer, ServerThread

# request_line's requests, as the emulator counts them: 10 tokens each (see test_quota.py).
TOKENS_PER_REQUEST = 10
WEST_KEY, EAST_KEY = "west-key-value", "east-key-value"


def serve(home: Path, key: str, limit: int) -> Iterator[EmulatorServer]:
    clock = FakeClock()
    settings = EmulatorSettings(home=home, time_scale=1.0, key=key, enqueued_tokens={"gpt-4o-mini": limit})
    emulator = Emulator(settings, clock=clock)
    with ServerThread(emulator.app, emulator) as running:
        yield EmulatorServer(running.url, emulator.key, emulator, clock)


@pytest.fixture
def west(tmp_path: Path) -> Iterator[EmulatorServer]:
    yield from serve(tmp_path / "west", WEST_KEY, 10 * TOKENS_PER_REQUEST)


@pytest.fixture
def east(tmp_path: Path) -> Iterator[EmulatorServer]:
    yield from serve(tmp_path / "east", EAST_KEY, 100 * TOKENS_PER_REQUEST)


def pool_text(west: EmulatorServer, east: EmulatorServer) -> str:
    return f"""
[[deployments]]
name = "west-mini"
endpoint = "{west.url}"
deployment = "gpt-4o-mini"
api_key_env = "POOL_WEST_KEY"
enqueued_tokens = {10 * TOKENS_PER_REQUEST}

[[deployments]]
name = "east-mini"
endpoint = "{east.url}"
deployment = "gpt-4o-mini"
api_key_env = "POOL_EAST_KEY"

[[deployments]]
name = "east-mini-again"
endpoint = "{east.url}"
deployment = "gpt-4o-mini"
api_key_env = "POOL_EAST_KEY"
"""


@dataclass
class Opened:
    main: BatchService
    pool: ServicePool
    settings: Settings


async def no_wait(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


@pytest.fixture
async def opened(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    west: EmulatorServer,
    east: EmulatorServer,
) -> AsyncIterator[Opened]:
    monkeypatch.setenv("POOL_WEST_KEY", WEST_KEY)
    monkeypatch.setenv("POOL_EAST_KEY", EAST_KEY)
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(pool_text(west, east), encoding="utf-8")
    settings = Settings(
        home=tmp_path / "home",
        workspace=str(tmp_path),
        provider="emulator",
        api_key=emulator.key,
        pool_path=pool_file,
        enqueued_tokens="east-mini=5K,gpt-4o=1M",
    )
    with anyio.fail_after(60):
        async with (
            BatchService.open(settings, emulator.transport(), sleep=no_wait) as main,
            ServicePool.open(settings, main, sleep=no_wait) as pool,
        ):
            yield Opened(main, pool, settings)


async def submit(service: BatchService, path: Path, key: str | None = None) -> str:
    uploaded = await service.upload_file(path)
    return (await service.create_batch(uploaded.file.id, idempotency_key=key)).id


async def test_names_are_looked_up_in_the_pool_then_on_this_resource(
    opened: Opened, west: EmulatorServer, east: EmulatorServer
) -> None:
    pool = opened.pool
    assert pool.names() == ["west-mini", "east-mini", "east-mini-again"]
    assert pool.lookup("west-mini") == PoolDeployment("west-mini", "gpt-4o-mini", west.url, 100, "pool")
    assert pool.lookup("east-mini") == PoolDeployment("east-mini", "gpt-4o-mini", east.url, 5000, "settings")
    assert pool.lookup("east-mini-again").enqueued_tokens is None
    assert pool.lookup("gpt-4o") == PoolDeployment("gpt-4o", "gpt-4o", DEFAULT_RESOURCE, 1_000_000, "settings")
    assert pool.lookup("gpt-4o-mini") == PoolDeployment("gpt-4o-mini", "gpt-4o-mini", DEFAULT_RESOURCE, None, None)
    assert pool.service("gpt-4o") is opened.main
    assert pool.service("east-mini") is pool.service("east-mini-again")  # one resource, one client
    assert pool.service("east-mini") is not pool.service("west-mini")
    with pytest.raises(UnknownDeployment) as caught:
        pool.lookup("nowhere")
    assert caught.value.known == ["east-mini", "east-mini-again", "gpt-4o", "gpt-4o-mini", "west-mini"]
    with pytest.raises(UnknownDeployment):
        pool.service("nowhere")


async def test_each_deployment_is_reached_on_its_own_resource_and_kept_in_the_one_registry(
    opened: Opened, tmp_path: Path, west: EmulatorServer, east: EmulatorServer
) -> None:
    path = write_batch_file(tmp_path / "in.jsonl", count=3)
    on_west = await submit(opened.pool.service("west-mini"), path)
    on_east = await submit(opened.pool.service("east-mini"), path)
    on_main = await submit(opened.pool.service("gpt-4o-mini"), path)

    async with azure_client(west.url, west.key) as west_sdk, azure_client(east.url, east.key) as east_sdk:
        assert [b.id for b in (await west_sdk.batches.list()).data] == [on_west]
        assert [b.id for b in (await east_sdk.batches.list()).data] == [on_east]
    async with await Store.open_for(opened.settings) as store:
        resources = {
            batch_id: record.batch.resource
            for batch_id in (on_west, on_east, on_main)
            if (record := await store.get_batch(batch_id)) is not None
        }
    assert resources == {on_west: west.url, on_east: east.url, on_main: None}


async def test_a_main_service_on_azure_never_asks_its_resource_about_a_pool_batch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator_server: EmulatorServer,
    west: EmulatorServer,
    east: EmulatorServer,
) -> None:
    # This server's own resource is Azure too (a third emulator): only `Batch.resource` tells the batches apart.
    monkeypatch.setenv("POOL_WEST_KEY", WEST_KEY)
    monkeypatch.setenv("POOL_EAST_KEY", EAST_KEY)
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(pool_text(west, east), encoding="utf-8")
    settings = Settings(
        home=tmp_path / "home",
        endpoint=emulator_server.url,
        api_key=emulator_server.key,
        pool_path=pool_file,
    )
    path = write_batch_file(tmp_path / "in.jsonl", count=3)
    clock = FakeClock()
    with anyio.fail_after(60):
        async with (
            BatchService.open(settings, sleep=no_wait, now=clock.now) as main,
            ServicePool.open(settings, main, sleep=no_wait, now=clock.now) as pool,
        ):
            on_west = await submit(pool.service("west-mini"), path)
            on_main = await submit(main, path)
            assert main.backend == pool.service("west-mini").backend == "azure"
            clock.advance(2 * main.poll_seconds)  # every snapshot is stale now
            shown = await main.registry_job(on_west)  # the snapshot: the main resource has no such batch
            emulator_server.clock.advance(DONE)
            west.clock.advance(DONE)
            changed = await main.refresh_active()
    assert shown.id == on_west
    assert shown.resource == west.url
    assert [batch.id for batch in changed] == [on_main]


async def test_each_resource_has_its_own_quota(opened: Opened, tmp_path: Path) -> None:
    ten = write_batch_file(tmp_path / "ten.jsonl", count=10)  # 100 tokens: all of west's quota
    await submit(opened.pool.service("west-mini"), ten)
    with pytest.raises(InvalidRequest) as caught:
        await submit(opened.pool.service("west-mini"), write_batch_file(tmp_path / "one.jsonl", count=1))
    on_east = [await submit(opened.pool.service("east-mini"), ten) for _ in range(3)]
    assert caught.value.code == TOKEN_LIMIT_EXCEEDED
    assert len(set(on_east)) == 3


async def test_a_shard_attempt_is_created_once_whichever_service_is_asked(opened: Opened, tmp_path: Path) -> None:
    path = write_batch_file(tmp_path / "in.jsonl", count=2)
    first = await submit(opened.pool.service("west-mini"), path, key="run_x-s0-a1")
    again = await submit(opened.pool.service("west-mini"), path, key="run_x-s0-a1")
    from_main = await submit(opened.main, path, key="run_x-s0-a1")  # the registry is shared
    assert first == again == from_main


async def test_results_come_from_the_resource_the_batch_is_on(
    opened: Opened, tmp_path: Path, west: EmulatorServer
) -> None:
    service = opened.pool.service("west-mini")
    batch_id = await submit(service, write_batch_file(tmp_path / "in.jsonl", count=3))
    west.clock.advance(DONE)
    assert (await service.get_batch(batch_id)).status == "completed"
    summary = await service.fetch_results(batch_id, output_dir=tmp_path / "out", preview=0)
    assert summary.counts.succeeded == 3
    kept = await opened.main.registry_job(batch_id)  # the registry still knows where it is
    assert (kept.resource, kept.results_path) == (west.url, summary.results_path)


async def test_without_a_pool_file_every_name_is_this_resources(tmp_path: Path, emulator: Emulator) -> None:
    settings = Settings(home=tmp_path / "home", workspace=str(tmp_path), provider="emulator", api_key=emulator.key)
    with anyio.fail_after(30):
        async with (
            BatchService.open(settings, emulator.transport()) as main,
            ServicePool.open(settings, main) as pool,
        ):
            assert pool.names() == []
            assert pool.service("gpt-4o-mini") is main
            with pytest.raises(UnknownDeployment):
                pool.lookup("west-mini")


async def test_a_bad_pool_file_stops_the_pool_from_opening(tmp_path: Path, emulator: Emulator) -> None:
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text('[[deployments]]\ndeployment = "d"\n', encoding="utf-8")
    settings = Settings(home=tmp_path / "home", provider="emulator", api_key=emulator.key, pool_path=pool_file)
    with anyio.fail_after(30):
        async with BatchService.open(settings, emulator.transport()) as main:
            with pytest.raises(InvalidInput, match="endpoint"):
                async with ServicePool.open(settings, main):
                    pass


async def test_a_pool_resource_refusing_the_key_is_an_sdk_auth_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator, west: EmulatorServer
) -> None:
    # The key variable is read, not the file: a wrong key reaches the resource and is refused there.
    monkeypatch.setenv("POOL_WEST_KEY", "not-the-key")
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(
        f'[[deployments]]\nendpoint = "{west.url}"\ndeployment = "gpt-4o-mini"\napi_key_env = "POOL_WEST_KEY"\n',
        encoding="utf-8",
    )
    settings = Settings(home=tmp_path / "home", provider="emulator", api_key=emulator.key, pool_path=pool_file)
    async with azure_client(west.url, "not-the-key") as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.batches.list()
    with anyio.fail_after(30):
        async with (
            BatchService.open(settings, emulator.transport()) as main,
            ServicePool.open(settings, main) as pool,
        ):
            with pytest.raises(AuthenticationFailed) as caught:
                await pool.service("gpt-4o-mini").list_batches()
    assert caught.value.auth == "key"
