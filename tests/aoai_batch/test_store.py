"""The job registry on both engines (a real SQLite file in tmp_path, a real PostgreSQL server's fresh
database: the `open_store` fixture), and the SQLite file's own cases (locks, a full disk, a damaged file)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from aoai_batch.errors import InvalidInput, NoSpace, RegistryLocked
from aoai_batch.models import Batch, FetchSummary, FileInfo, ResultCounts
from aoai_batch.store import SCHEMA_VERSION, Store
from tests.support.stores import Clock, StoreOpener, make_batch


@pytest.fixture
async def store(open_store: StoreOpener) -> AsyncIterator[Store]:
    async with await open_store() as opened:
        yield opened


async def test_a_saved_batch_comes_back_with_its_snapshot(store: Store) -> None:
    await store.save_batch(make_batch("batch_1", metadata={"k": "v"}), idempotency_key="key-1")
    record = await store.get_batch("batch_1")
    assert record is not None
    assert record.batch.id == "batch_1"
    assert record.batch.metadata == {"k": "v"}
    assert record.idempotency_key == "key-1"


@pytest.mark.parametrize(
    ("stored", "stale"),
    [
        (make_batch("b", "cancelling"), make_batch("b", "validating")),
        (make_batch("b", "cancelled"), make_batch("b", "in_progress")),
        (make_batch("b", "completed"), make_batch("b", "finalizing")),
        (
            make_batch("b", "in_progress", request_counts={"total": 9, "completed": 5}),
            make_batch("b", "in_progress", request_counts={"total": 9, "completed": 2}),
        ),
    ],
)
async def test_an_older_snapshot_never_replaces_a_newer_one(store: Store, stored: Batch, stale: Batch) -> None:
    await store.save_batch(stored)
    returned = await store.save_batch(stale)  # e.g. a slow poll answered before a cancel
    record = await store.get_batch("b")
    assert record is not None
    assert record.batch == returned.batch == stored


async def test_a_newer_snapshot_replaces_the_stored_one(store: Store) -> None:
    await store.save_batch(make_batch("b", "in_progress", request_counts={"total": 9, "completed": 2}))
    newer = make_batch("b", "in_progress", request_counts={"total": 9, "completed": 5})
    assert (await store.save_batch(newer)).batch == newer


async def test_an_unknown_batch_is_none(store: Store) -> None:
    assert await store.get_batch("batch_missing") is None
    assert await store.get_file("file_missing") is None
    assert await store.results_summary("batch_missing") is None


async def test_a_batch_takes_its_input_path_from_the_uploaded_file(store: Store) -> None:
    file = FileInfo(id="file_1", filename="in.jsonl", backend="emulator")
    await store.save_file(file, local_path="/data/in.jsonl")
    record = await store.save_batch(make_batch("batch_1", input_file_id="file_1"))
    assert record.batch.input_path == "/data/in.jsonl"


async def test_later_snapshots_keep_the_local_paths_and_the_key(store: Store) -> None:
    await store.save_batch(make_batch("batch_1"), input_path="/in.jsonl", idempotency_key="k")
    record = await store.save_batch(make_batch("batch_1", "in_progress"))
    assert record.batch.status == "in_progress"
    assert record.batch.input_path == "/in.jsonl"
    assert record.idempotency_key == "k"


async def test_status_history_records_each_status_once_in_order(open_store: StoreOpener) -> None:
    clock = Clock()
    async with await open_store(now=clock) as store:
        for status in ["validating", "in_progress", "in_progress", "completed"]:
            clock.now += 10
            await store.save_batch(make_batch("batch_1", status))
        history = await store.history("batch_1")
    assert [change.status for change in history] == ["validating", "in_progress", "completed"]
    assert history[0].seen_at == datetime.fromtimestamp(1_700_000_010, tz=UTC)


async def test_jobs_are_listed_newest_first_and_active_ones_can_be_selected(open_store: StoreOpener) -> None:
    clock = Clock()
    async with await open_store(now=clock) as store:
        for n, status in enumerate(["completed", "in_progress", "validating"]):
            clock.now += 1
            await store.save_batch(make_batch(f"batch_{n}", status))
        every = await store.list_batches()
        active = await store.list_batches(active_only=True)
    assert [r.batch.id for r in every] == ["batch_2", "batch_1", "batch_0"]
    assert [r.batch.id for r in active] == ["batch_2", "batch_1"]


async def test_jobs_are_ordered_by_the_services_creation_time_not_when_they_were_seen(store: Store) -> None:
    await store.save_batch(make_batch("batch_new", created_at=datetime(2025, 5, 2, tzinfo=UTC)))
    await store.save_batch(make_batch("batch_old", created_at=datetime(2025, 5, 1, tzinfo=UTC)))
    assert [record.batch.id for record in await store.list_batches()] == ["batch_new", "batch_old"]


async def test_a_batch_is_found_by_its_idempotency_key(store: Store) -> None:
    await store.save_batch(make_batch("batch_1"), idempotency_key="abc")
    found = await store.find_by_idempotency_key("abc")
    assert found is not None
    assert found.batch.id == "batch_1"
    assert await store.find_by_idempotency_key("other") is None


async def test_a_results_summary_is_kept_and_sets_the_results_path(store: Store) -> None:
    await store.save_batch(make_batch("batch_1", "completed"))
    summary = FetchSummary(
        batch_id="batch_1",
        batch_status="completed",
        format="jsonl",
        results_path="/out/results.jsonl",
        counts=ResultCounts(succeeded=3),
    )
    await store.save_results_summary(summary)
    assert await store.results_summary("batch_1") == summary
    record = await store.get_batch("batch_1")
    assert record is not None
    assert record.batch.results_path == "/out/results.jsonl"


async def test_the_registry_survives_a_reopen(open_store: StoreOpener) -> None:
    async with await open_store() as store:
        await store.save_batch(make_batch("batch_1"))
    async with await open_store() as store:
        assert await store.get_batch("batch_1") is not None


async def test_concurrent_tasks_write_without_losing_records(store: Store) -> None:
    async def write(n: int) -> None:
        await store.save_batch(make_batch(f"batch_{n}"))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for n in range(50):
                group.start_soon(write, n)
    assert len(await store.list_batches()) == 50


def open_and_close(path: Path, *, lock_timeout: float = 30.0) -> None:
    """Open the SQLite registry at `path` (migrating it) and close it, from sync code."""

    async def open_close() -> None:
        await (await Store.open(path, lock_timeout=lock_timeout)).close()

    anyio.run(open_close)


def test_a_new_database_is_at_the_current_schema_version_in_wal_mode(tmp_path: Path) -> None:
    open_and_close(tmp_path / "s.sqlite3")
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(InvalidInput, match="newer version"):
        open_and_close(tmp_path / "s.sqlite3")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "s.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InvalidInput, match="damaged or not a registry"):
        open_and_close(tmp_path / "s.sqlite3")


WRITER = textwrap.dedent(
    """
    import sys
    import anyio
    from aoai_batch.models import Batch
    from aoai_batch.store import Store

    async def main():
        store = await Store.open(sys.argv[1])
        n = 0
        while True:
            batch = Batch(id=f"batch_{n}", status="in_progress", terminal=False, backend="emulator",
                          metadata={"n": str(n), "pad": "x" * 500})
            await store.save_batch(batch, idempotency_key=f"key-{n}")
            print(n, flush=True)
            n += 1

    anyio.run(main)
    """
)


def test_a_writer_killed_mid_write_leaves_every_committed_record(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    ) as writer:
        assert writer.stdout is not None
        committed = [int(writer.stdout.readline()) for _ in range(300)]
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        committed += [int(line) for line in writer.stdout.read().split()]
    assert writer.returncode == -signal.SIGKILL

    async def check() -> None:
        async with await Store.open(path) as store:
            for n in committed:
                record = await store.get_batch(f"batch_{n}")
                assert record is not None
                assert record.batch.metadata["n"] == str(n)
                assert record.idempotency_key == f"key-{n}"

    anyio.run(check)
    assert len(committed) >= 300


def test_a_home_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    with pytest.raises(InvalidInput, match="cannot be created"):
        open_and_close(blocker / "home" / "state.sqlite3")


OPENER = textwrap.dedent(
    """
    import sys
    import anyio
    from aoai_batch.store import Store

    async def open_close(path):
        await (await Store.open(path)).close()

    print("ready", flush=True)
    for path in sys.argv[1:]:
        sys.stdin.readline()  # the go signal: every opener starts each round together
        try:
            anyio.run(open_close, path)
            print("ok", flush=True)
        except Exception as exc:
            print(f"{type(exc).__name__}: {exc}".replace("\\n", " "), flush=True)
    """
)
OPENERS = 8
ROUNDS = 12


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate(timeout=30)  # also closes its pipes


def test_processes_opening_a_new_registry_together_all_succeed(tmp_path: Path) -> None:
    """Real processes open the same fresh file at once, round after round.

    The first to switch it to WAL holds an exclusive lock that the others must wait out (SQLite does not
    retry that switch by itself); the schema is created once, since its tables are created without
    IF NOT EXISTS and a second migrator would fail.
    """
    paths = [str(tmp_path / f"round-{n}" / "state.sqlite3") for n in range(ROUNDS)]
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, *paths], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(OPENERS)
    ]
    answers: list[str] = []
    try:
        for opener in openers:
            assert opener.stdout is not None
            assert opener.stdout.readline().strip() == "ready"
        for _ in paths:
            for opener in openers:
                assert opener.stdin is not None
                opener.stdin.write("go\n")
                opener.stdin.flush()
            for opener in openers:
                assert opener.stdout is not None
                answers.append(opener.stdout.readline().strip())
    finally:
        for opener in openers:
            stop(opener)
    assert [a for a in answers if a != "ok"] == []
    for path in paths:
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()


HOLDER = textwrap.dedent(
    """
    import sqlite3, sys

    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # the write lock, held until this process ends
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], None]]:
    """Start a real process that takes a file's write lock and keeps it until the test ends."""
    holders: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> None:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        holders.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"

    yield hold
    for holder in holders:
        stop(holder)


def test_a_new_registry_locked_by_another_process_is_reported_as_locked(
    tmp_path: Path, lock_holder: Callable[[Path], None]
) -> None:
    path = tmp_path / "state.sqlite3"
    lock_holder(path)

    with pytest.raises(RegistryLocked) as caught:
        open_and_close(path, lock_timeout=0.2)
    assert str(path) in str(caught.value)


async def test_a_write_waits_for_another_process_then_reports_the_lock(
    tmp_path: Path, lock_holder: Callable[[Path], None]
) -> None:
    path = tmp_path / "state.sqlite3"
    async with await Store.open(path):
        pass
    lock_holder(path)

    async with await Store.open(path, lock_timeout=0.2) as store:  # opening an up-to-date registry writes nothing
        with pytest.raises(RegistryLocked) as caught:
            await store.save_batch(make_batch("batch_1"))
        assert await store.get_batch("batch_1") is None  # reads go on: WAL readers never wait for a writer
    assert str(path) in str(caught.value)


def test_a_lock_released_in_time_is_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    open_and_close(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        holder.stdin.write("\n")  # the holder ends (and its lock with it) while or before the write waits
        holder.stdin.flush()
        anyio.run(save_and_read, path)
    finally:
        stop(holder)


async def save_and_read(path: Path) -> None:
    async with await Store.open(path) as store:
        await store.save_batch(make_batch("batch_1"))
        assert await store.get_batch("batch_1") is not None


async def test_a_registry_on_a_full_disk_is_no_space_and_keeps_what_it_committed(tiny_disk: Path) -> None:
    """SQLITE_FULL from a real, full 256 KiB tmpfs."""
    async with await Store.open(tiny_disk / "state.sqlite3") as store:
        with pytest.raises(NoSpace) as caught:
            await fill(store)
        assert caught.value.folder == str(tiny_disk)
        kept = await store.list_batches()
        assert kept  # what was committed before the disk filled up is still there
        with pytest.raises(NoSpace):
            await store.save_batch(make_batch("batch_again", metadata={"pad": "x" * 5000}))  # refused alike
        assert len(await store.list_batches()) == len(kept)


async def fill(store: Store) -> None:
    for n in range(10_000):
        await store.save_batch(make_batch(f"batch_{n}", metadata={"pad": "x" * 500}))
