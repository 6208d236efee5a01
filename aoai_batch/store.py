"""The job registry: a SQLite file (WAL) of the files and batches this program has seen.

Every call runs in a worker thread (SQLite blocks); one connection guarded by a lock keeps concurrent
tasks safe, and WAL with a busy timeout lets a CLI and servers of several clients share the file: opening,
migrating and every write wait out another process's lock (`sqlite_wal`), and one held for longer is a
`RegistryLocked` naming the file. A process killed in the middle of a write loses at most the uncommitted
transaction: SQLite's journal guarantees it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio.to_thread
from pydantic import BaseModel

from aoai_batch.errors import BatchToolError, InvalidInput, NoSpace, NotWritable, RegistryLocked
from aoai_batch.leases import LeaseKind, holder_is_gone
from aoai_batch.models import Batch, BatchStatus, FetchSummary, FileInfo
from aoai_batch.sqlite_wal import connect_shared, is_busy, retry_while_busy

T = TypeVar("T")
LOCK_TIMEOUT_SECONDS = 30.0  # how long a write waits for another process (a CLI beside a server) to finish its own

# Each entry upgrades the schema by one version (PRAGMA user_version); never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,
        local_path TEXT,
        saved_at REAL NOT NULL
    );
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,
        status TEXT NOT NULL,
        terminal INTEGER NOT NULL,
        input_path TEXT,
        results_path TEXT,
        idempotency_key TEXT,
        first_seen REAL NOT NULL,
        refreshed_at REAL NOT NULL
    );
    CREATE INDEX batches_by_key ON batches (idempotency_key);
    CREATE INDEX batches_by_terminal ON batches (terminal);
    CREATE TABLE status_history (
        batch_id TEXT NOT NULL REFERENCES batches (id),
        status TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (batch_id, status)
    );
    CREATE TABLE results (
        batch_id TEXT PRIMARY KEY,
        summary TEXT NOT NULL,
        saved_at REAL NOT NULL
    );
    """,
    # 2: runs (aoai_batch/runs/records.py reads and writes these tables)
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        name TEXT,
        status TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        deployments TEXT NOT NULL,
        retries INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        input_path TEXT NOT NULL,
        source_path TEXT,
        requests INTEGER NOT NULL,
        estimated_input_tokens INTEGER NOT NULL,
        backend TEXT NOT NULL,
        errors TEXT NOT NULL,
        results_summary TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX runs_by_status ON runs (status);
    CREATE TABLE run_shards (
        run_id TEXT NOT NULL REFERENCES runs (id),
        shard_index INTEGER NOT NULL,
        kind TEXT NOT NULL,
        first_line INTEGER NOT NULL,
        line_count INTEGER NOT NULL,
        start_byte INTEGER NOT NULL,
        end_byte INTEGER NOT NULL,
        estimated_tokens INTEGER NOT NULL,
        lines_path TEXT,
        request_attempt INTEGER NOT NULL,
        parent INTEGER,
        state TEXT NOT NULL,
        deployment TEXT,
        attempt INTEGER NOT NULL,
        refusals INTEGER NOT NULL,
        upload_path TEXT,
        file_id TEXT,
        file_deployment TEXT,
        batch_id TEXT,
        batch_status TEXT,
        request_counts TEXT,
        next_try_at REAL,
        error TEXT,
        results_path TEXT,
        errors_path TEXT,
        updated_at REAL NOT NULL,
        PRIMARY KEY (run_id, shard_index)
    );
    CREATE INDEX run_shards_by_state ON run_shards (state, deployment);
    CREATE TABLE learned_limits (
        deployment TEXT PRIMARY KEY,
        enqueued_limit INTEGER NOT NULL,
        message TEXT NOT NULL,
        learned_at REAL NOT NULL
    );
    CREATE TABLE run_leases (
        run_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    # 3: a run's estimated cost at its start (EstimatedCost JSON; null for runs started before)
    "ALTER TABLE runs ADD COLUMN estimated_cost TEXT;",
    # 4: who made each upload, batch and run (a signed-in user's `oid` or `sub`; null without sign-in), and one
    # table of leases (a run's, a watched batch's) instead of the runs' own
    """
    ALTER TABLE files ADD COLUMN owner TEXT;
    ALTER TABLE batches ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN owner TEXT;
    CREATE INDEX batches_by_owner ON batches (owner);
    CREATE TABLE leases (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (kind, id)
    );
    INSERT INTO leases (kind, id, holder, expires_at) SELECT 'run', run_id, owner, expires_at FROM run_leases;
    DROP TABLE run_leases;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StatusChange(BaseModel):
    status: BatchStatus
    seen_at: datetime


class BatchRecord(BaseModel):
    """A batch as the registry knows it: the last snapshot (with local paths filled in) and when it was taken."""

    batch: Batch
    idempotency_key: str | None = None
    owner: str | None = None  # who created it (a signed-in user's `Principal.owner`); None without sign-in
    first_seen: datetime
    refreshed_at: datetime


class FileRecord(BaseModel):
    file: FileInfo
    local_path: str | None = None
    owner: str | None = None


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class Registry:
    """The synchronous registry; `Store` runs it in worker threads."""

    def __init__(
        self, path: Path, *, now: Callable[[], float] = time.time, lock_timeout: float = LOCK_TIMEOUT_SECONDS
    ) -> None:
        self.path = Path(path)
        self._now = now
        self._lock = threading.Lock()
        self._lock_timeout = lock_timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NotWritable(
                f"The folder of the job registry {self.path.parent} cannot be created ({exc.strerror}); "
                "set AOAI_BATCH_HOME to a folder you can write.",
                folder=str(self.path.parent),
            ) from exc
        try:
            self._db = connect_shared(self.path, timeout=lock_timeout, synchronous="FULL")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            self._db.execute("PRAGMA foreign_keys=ON")
            with self._translated():
                retry_while_busy(self._migrate, lock_timeout)
        except BaseException:
            self._db.close()
            raise

    def _translate(self, exc: sqlite3.Error) -> BatchToolError:
        """The error tree's counterpart of a SQLite error: what holds the file, a full disk, or a broken file."""
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if is_busy(exc):
            return RegistryLocked(
                f"The job registry {self.path} is locked by another aoai-batch-mcp process using the same home "
                f"({self.path.parent}) and was not freed within {self._lock_timeout:g} s; wait for that process "
                "to finish (or stop it) and try again."
            )
        if code == sqlite3.SQLITE_FULL:
            return NoSpace(
                f"The disk holding the job registry {self.path} is full; free some space and try again.",
                folder=str(self.path.parent),
            )
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return InvalidInput(
                f"The job registry {self.path} is damaged or not a registry ({exc}); move it aside or set "
                "AOAI_BATCH_HOME."
            )
        return NotWritable(
            f"The job registry {self.path} cannot be used ({exc}); check the folder's permissions and the disk, "
            "or set AOAI_BATCH_HOME.",
            folder=str(self.path.parent),
        )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction for the registry's other tables (runs); errors translated like the rest."""
        with self._transaction() as db:
            yield db

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of a read of the registry's other tables (runs)."""
        return self._query(sql, params)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE waits (up to the lock timeout) for another process's write."""
        with self._translated(), self._raw_transaction() as db:
            yield db

    @contextmanager
    def _raw_transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT (a full disk) may leave it open
                    self._db.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        """Bring the schema up to date; the version is read again under the write lock: no migration runs twice."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # the usual case: opening needs no write lock
        with self._raw_transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise InvalidInput(
                    f"The job registry {self.path} was written by a newer version (schema {version}); upgrade."
                )
            for script in MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, self._translated():
            cursor = self._db.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    # files

    def save_file(self, info: FileInfo, local_path: str | None = None, *, owner: str | None = None) -> FileRecord:
        """Keep the file's metadata; the local path and the owner are kept once known."""
        with self._transaction() as db:
            db.execute(
                """INSERT INTO files (id, snapshot, local_path, saved_at, owner) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot,
                   local_path = COALESCE(excluded.local_path, files.local_path), saved_at = excluded.saved_at,
                   owner = COALESCE(files.owner, excluded.owner)""",
                (info.id, info.model_dump_json(), local_path, self._now(), owner),
            )
        record = self.get_file(info.id)
        assert record is not None
        return record

    def get_file(self, file_id: str) -> FileRecord | None:
        rows = self._query("SELECT snapshot, local_path, owner FROM files WHERE id = ?", (file_id,))
        if not rows:
            return None
        row = rows[0]
        return FileRecord(
            file=FileInfo.model_validate_json(row["snapshot"]), local_path=row["local_path"], owner=row["owner"]
        )

    # batches

    def save_batch(
        self,
        batch: Batch,
        *,
        input_path: str | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
    ) -> BatchRecord:
        """Store the latest snapshot; local paths, the key, the owner and the resource are kept once known, history
        grows on change.

        A snapshot older than the stored one (a slow poll answered before a cancel, say) never replaces it:
        the stored record, as it is after this call, is what comes back.
        """
        now = self._now()
        snapshot = batch.model_copy(update={"input_path": None, "results_path": None}).model_dump_json()
        with self._transaction() as db:
            if input_path is None and batch.input_file_id:
                row = db.execute("SELECT local_path FROM files WHERE id = ?", (batch.input_file_id,)).fetchone()
                input_path = row[0] if row else None
            stored = db.execute("SELECT snapshot FROM batches WHERE id = ?", (batch.id,)).fetchone()
            known = Batch.model_validate_json(stored[0]) if stored is not None else None
            if known is not None and is_behind(batch, known):
                snapshot = stored[0]
                batch = known
            elif known is not None and known.resource and batch.resource is None:  # fetch_results saves it unmarked
                batch = batch.model_copy(update={"resource": known.resource})
                snapshot = batch.model_copy(update={"input_path": None, "results_path": None}).model_dump_json()
            db.execute(
                """INSERT INTO batches (id, snapshot, status, terminal, input_path, results_path, idempotency_key,
                                        first_seen, refreshed_at, owner)
                   VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, status = excluded.status,
                   terminal = excluded.terminal, refreshed_at = excluded.refreshed_at,
                   input_path = COALESCE(batches.input_path, excluded.input_path),
                   idempotency_key = COALESCE(batches.idempotency_key, excluded.idempotency_key),
                   owner = COALESCE(batches.owner, excluded.owner)""",
                (batch.id, snapshot, batch.status, int(batch.terminal), input_path, idempotency_key, now, now, owner),
            )
            db.execute(
                "INSERT OR IGNORE INTO status_history (batch_id, status, seen_at) VALUES (?, ?, ?)",
                (batch.id, batch.status, now),
            )
            cursor = db.execute(f"{_BATCH_SELECT} WHERE id = ?", (batch.id,))
            cursor.row_factory = sqlite3.Row
            return _batch_record(cursor.fetchone())

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        rows = self._query(f"{_BATCH_SELECT} WHERE id = ?", (batch_id,))
        return _batch_record(rows[0]) if rows else None

    def find_by_idempotency_key(self, key: str, *, owner: str | None = None) -> BatchRecord | None:
        """The batch created under `key` by `owner` (each user's keys are their own; None: made without sign-in)."""
        mine = "owner = ?" if owner is not None else "owner IS NULL"
        params = (key, owner) if owner is not None else (key,)
        rows = self._query(f"{_BATCH_SELECT} WHERE idempotency_key = ? AND {mine} ORDER BY first_seen LIMIT 1", params)
        return _batch_record(rows[0]) if rows else None

    def list_batches(
        self, *, limit: int | None = None, active_only: bool = False, owner: str | None = None
    ) -> list[BatchRecord]:
        """Newest first: by the service's creation time, then by when this registry first saw them.

        `owner`: only that user's batches (None: everyone's)."""
        conditions = [*(["terminal = 0"] if active_only else []), *(["owner = ?"] if owner is not None else [])]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        order = "ORDER BY COALESCE(json_extract(snapshot, '$.created_at'), '') DESC, first_seen DESC, id DESC"
        params = (*((owner,) if owner is not None else ()), limit or -1)
        rows = self._query(f"{_BATCH_SELECT} {where} {order} LIMIT ?", params)
        return [_batch_record(row) for row in rows]

    def history(self, batch_id: str) -> list[StatusChange]:
        rows = self._query(
            "SELECT status, seen_at FROM status_history WHERE batch_id = ? ORDER BY seen_at, rowid", (batch_id,)
        )
        return [StatusChange(status=row["status"], seen_at=_when(row["seen_at"])) for row in rows]

    # results

    def save_results_summary(self, summary: FetchSummary) -> None:
        """Keep the summary (served as batch://jobs/{id}/results) and the results path on the batch."""
        with self._transaction() as db:
            db.execute(
                """INSERT INTO results (batch_id, summary, saved_at) VALUES (?, ?, ?)
                   ON CONFLICT (batch_id) DO UPDATE SET summary = excluded.summary, saved_at = excluded.saved_at""",
                (summary.batch_id, summary.model_dump_json(), self._now()),
            )
            if summary.results_path:
                db.execute("UPDATE batches SET results_path = ? WHERE id = ?", (summary.results_path, summary.batch_id))

    def results_summary(self, batch_id: str) -> FetchSummary | None:
        rows = self._query("SELECT summary FROM results WHERE batch_id = ?", (batch_id,))
        return FetchSummary.model_validate_json(rows[0]["summary"]) if rows else None

    # leases (aoai_batch/leases.py)

    def take_leases(
        self, kind: LeaseKind, ids: Sequence[str], holder: str, *, ttl: float, now: float | None = None
    ) -> set[str]:
        """Take (or renew) the leases of these jobs that are free, expired, `holder`'s own or held by a process
        of this host that died; the ids taken. Each take is one conditional upsert: of two processes taking the
        same lease at once, one wins."""
        if not ids:
            return set()
        now = self._now() if now is None else now
        taken: set[str] = set()
        with self._transaction() as db:
            held = {
                row[0]: row[1]
                for row in db.execute(
                    f"SELECT id, holder FROM leases WHERE kind = ? AND id IN ({', '.join('?' for _ in ids)})",
                    (kind, *ids),
                )
            }
            for job_id in ids:
                gone = held[job_id] if job_id in held and holder_is_gone(held[job_id]) else ""
                cursor = db.execute(
                    """INSERT INTO leases (kind, id, holder, expires_at) VALUES (?, ?, ?, ?)
                       ON CONFLICT (kind, id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                       WHERE leases.holder = excluded.holder OR leases.expires_at <= ? OR leases.holder = ?""",
                    (kind, job_id, holder, now + ttl, now, gone),
                )
                if cursor.rowcount == 1:
                    taken.add(job_id)
        return taken

    def release_lease(self, kind: LeaseKind, job_id: str, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE kind = ? AND id = ? AND holder = ?", (kind, job_id, holder))


# How far along a batch is: a status of lower rank (or the same, with fewer requests done) is an older read.
_STATUS_RANK: dict[str, int] = {
    "validating": 0,
    "in_progress": 1,
    "finalizing": 2,
    "cancelling": 2,
    "failed": 3,
    "completed": 3,
    "expired": 3,
    "cancelled": 3,
}


def is_behind(new: Batch, stored: Batch) -> bool:
    """True when `new` is an older view of the batch than `stored`."""

    def progress(batch: Batch) -> tuple[int, int]:
        counts = batch.request_counts
        return _STATUS_RANK[batch.status], counts.completed + counts.failed

    return progress(new) < progress(stored)


_BATCH_SELECT = (
    "SELECT snapshot, input_path, results_path, idempotency_key, first_seen, refreshed_at, owner FROM batches"
)


def _batch_record(row: sqlite3.Row) -> BatchRecord:
    batch = Batch.model_validate_json(row["snapshot"]).model_copy(
        update={"input_path": row["input_path"], "results_path": row["results_path"]}
    )
    return BatchRecord(
        batch=batch,
        idempotency_key=row["idempotency_key"],
        owner=row["owner"],
        first_seen=_when(row["first_seen"]),
        refreshed_at=_when(row["refreshed_at"]),
    )


class Store:
    """The registry for async code: each call runs in a worker thread."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @classmethod
    async def open(
        cls, path: Path, *, now: Callable[[], float] = time.time, lock_timeout: float = LOCK_TIMEOUT_SECONDS
    ) -> Self:
        registry = await anyio.to_thread.run_sync(lambda: Registry(path, now=now, lock_timeout=lock_timeout))
        return cls(registry)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.registry.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn)

    async def save_file(self, info: FileInfo, local_path: str | None = None, *, owner: str | None = None) -> FileRecord:
        return await self._run(lambda: self.registry.save_file(info, local_path, owner=owner))

    async def get_file(self, file_id: str) -> FileRecord | None:
        return await self._run(lambda: self.registry.get_file(file_id))

    async def save_batch(
        self,
        batch: Batch,
        *,
        input_path: str | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
    ) -> BatchRecord:
        return await self._run(
            lambda: self.registry.save_batch(batch, input_path=input_path, idempotency_key=idempotency_key, owner=owner)
        )

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        return await self._run(lambda: self.registry.get_batch(batch_id))

    async def find_by_idempotency_key(self, key: str, *, owner: str | None = None) -> BatchRecord | None:
        return await self._run(lambda: self.registry.find_by_idempotency_key(key, owner=owner))

    async def list_batches(
        self, *, limit: int | None = None, active_only: bool = False, owner: str | None = None
    ) -> list[BatchRecord]:
        return await self._run(lambda: self.registry.list_batches(limit=limit, active_only=active_only, owner=owner))

    async def history(self, batch_id: str) -> list[StatusChange]:
        return await self._run(lambda: self.registry.history(batch_id))

    async def save_results_summary(self, summary: FetchSummary) -> None:
        await self._run(lambda: self.registry.save_results_summary(summary))

    async def results_summary(self, batch_id: str) -> FetchSummary | None:
        return await self._run(lambda: self.registry.results_summary(batch_id))

    async def take_leases(
        self, kind: LeaseKind, ids: Sequence[str], holder: str, *, ttl: float, now: float | None = None
    ) -> set[str]:
        return await self._run(lambda: self.registry.take_leases(kind, ids, holder, ttl=ttl, now=now))

    async def release_lease(self, kind: LeaseKind, job_id: str, holder: str) -> None:
        await self._run(lambda: self.registry.release_lease(kind, job_id, holder))
