"""Who made each job (owners) and who watches it (leases), in the job registry, on both engines."""

from __future__ import annotations

import os
import sys

import anyio

from aoai_batch.leases import new_holder
from aoai_batch.models import FileInfo
from aoai_batch.store import Store
from tests.support.stores import Clock, StoreOpener, make_batch


async def test_an_owner_is_kept_once_known_and_never_replaced(open_store: StoreOpener) -> None:
    async with await open_store() as store:
        await store.save_batch(make_batch("batch_1"), owner="alice")
        await store.save_batch(make_batch("batch_1", "in_progress"))  # a poll knows no owner
        await store.save_batch(make_batch("batch_1", "completed"), owner="bob")
        record = await store.get_batch("batch_1")
        assert record is not None
        assert record.owner == "alice"
        info = FileInfo.model_validate(
            {"id": "file-1", "bytes": 3, "filename": "a.jsonl", "status": "processed", "backend": "emulator"}
        )
        await store.save_file(info, "/tmp/a.jsonl", owner="alice")
        await store.save_file(info)
        file = await store.get_file("file-1")
        assert file is not None
        assert (file.owner, file.local_path) == ("alice", "/tmp/a.jsonl")


async def test_listing_by_owner_shows_only_their_batches(open_store: StoreOpener) -> None:
    async with await open_store() as store:
        await store.save_batch(make_batch("batch_a"), owner="alice")
        await store.save_batch(make_batch("batch_b"), owner="bob")
        await store.save_batch(make_batch("batch_n"))
        assert [r.batch.id for r in await store.list_batches(owner="alice")] == ["batch_a"]
        assert {r.batch.id for r in await store.list_batches()} == {"batch_a", "batch_b", "batch_n"}


async def test_idempotency_keys_belong_to_their_owner(open_store: StoreOpener) -> None:
    async with await open_store() as store:
        await store.save_batch(make_batch("batch_a"), idempotency_key="k", owner="alice")
        found = await store.find_by_idempotency_key("k", owner="alice")
        assert found is not None
        assert found.batch.id == "batch_a"
        assert await store.find_by_idempotency_key("k", owner="bob") is None
        assert await store.find_by_idempotency_key("k") is None  # without sign-in: only unowned batches


async def test_a_lease_is_held_by_one_holder_until_it_expires(open_store: StoreOpener) -> None:
    clock = Clock()
    async with await open_store(now=clock) as store:
        assert await store.take_leases("batch", ["b1", "b2"], "elsewhere:1:a", ttl=60) == {"b1", "b2"}
        assert await store.take_leases("batch", ["b1", "b2", "b3"], "elsewhere:2:b", ttl=60) == {"b3"}
        assert await store.take_leases("batch", ["b1"], "elsewhere:1:a", ttl=60) == {"b1"}  # renewed
        assert await store.take_leases("run", ["b1"], "elsewhere:2:b", ttl=60) == {"b1"}  # kinds are apart
        clock.now += 61
        assert await store.take_leases("batch", ["b1", "b2"], "elsewhere:2:b", ttl=60) == {"b1", "b2"}
        await store.release_lease("batch", "b1", "elsewhere:2:b")
        assert await store.take_leases("batch", ["b1"], "elsewhere:1:a", ttl=60) == {"b1"}


async def test_a_killed_holder_on_this_host_frees_its_leases_at_once(open_store: StoreOpener) -> None:
    child = await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])
    dead = new_holder().replace(f":{os.getpid()}:", f":{int(child.stdout)}:")
    async with await open_store() as store:
        assert await store.take_leases("batch", ["b1"], dead, ttl=600) == {"b1"}
        assert await store.take_leases("batch", ["b1"], new_holder(), ttl=600) == {"b1"}


async def test_two_processes_racing_for_the_same_leases_never_both_win(open_store: StoreOpener) -> None:
    ids = [f"b{i}" for i in range(30)]
    async with await open_store() as first, await open_store() as second:
        won: dict[str, set[str]] = {}

        async def take(name: str, store: Store) -> None:
            won[name] = await store.take_leases("batch", ids, f"elsewhere:{name}:x", ttl=60)

        async with anyio.create_task_group() as tg:
            tg.start_soon(take, "1", first)
            tg.start_soon(take, "2", second)
    assert won["1"] | won["2"] == set(ids)
    assert not won["1"] & won["2"]
