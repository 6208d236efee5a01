"""The job registry: the files, batches and runs this program has seen, in SQLite or PostgreSQL.

Unset AOAI_BATCH_DATABASE_URL, it is a SQLite file under AOAI_BATCH_HOME that the processes of one home
share (`db.sqlite`); set, a PostgreSQL database that the replicas of a team server share (`db.postgres`).
The SQL here and in `runs/records.py` is written once, for both (`db`); the same versioned migrations run on
both. Every write is one transaction: a process killed in the middle loses at most that transaction.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel

from aoai_batch.db import Database, DatabaseEngine, Row
from aoai_batch.db.sqlite import SqliteDatabase
from aoai_batch.leases import LeaseKind, holder_is_gone
from aoai_batch.models import Batch, BatchStatus, FetchSummary, FileInfo

if TYPE_CHECKING:
    from aoai_batch.settings import Settings

LOCK_TIMEOUT_SECONDS = 30.0  # how long a write waits for another process (a CLI beside a server) to finish its own
ChangeKind = Literal["batch", "run"]

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
# Statuses seen at the same instant are listed in the order a batch goes through them
_HISTORY_ORDER = "ORDER BY seen_at, CASE status {} ELSE 9 END, status".format(
    " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in _STATUS_RANK.items())
)


def _batch_record(row: Row) -> BatchRecord:
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
    """The registry for async code, on either engine (`database`)."""

    def __init__(self, database: Database, *, now: Callable[[], float] = time.time) -> None:
        self.database = database
        self._now = now

    @classmethod
    async def open(
        cls, path: Path, *, now: Callable[[], float] = time.time, lock_timeout: float = LOCK_TIMEOUT_SECONDS
    ) -> Self:
        """The SQLite registry at `path` (made, with its folder, when missing), its schema brought up to date.

        Raises:
            NotWritable: the folder cannot be made or the file cannot be used.
            RegistryLocked: another process held the file's lock past `lock_timeout`.
            InvalidInput: the file is damaged, not a registry, or of a newer version.
        """
        database = await SqliteDatabase.open(path, lock_timeout=lock_timeout)
        return await cls._migrated(database, now)

    @classmethod
    async def open_url(cls, url: str, *, now: Callable[[], float] = time.time) -> Self:
        """The PostgreSQL registry at `url` (a database that exists), its schema brought up to date.

        Raises:
            ConnectionFailed: the server cannot be reached or refuses the user (AOAI_BATCH_DATABASE_URL).
            ServiceUnavailable: the server refused a statement (the user's rights).
        """
        from aoai_batch.db.postgres import PostgresDatabase  # psycopg only when a PostgreSQL URL is set

        return await cls._migrated(await PostgresDatabase.open(url), now)

    @classmethod
    async def open_for(cls, settings: Settings, *, now: Callable[[], float] = time.time) -> Self:
        """The registry the settings name: PostgreSQL when AOAI_BATCH_DATABASE_URL is set, else the SQLite file
        under AOAI_BATCH_HOME."""
        if settings.database_url is not None:
            return await cls.open_url(settings.database_url.get_secret_value(), now=now)
        return await cls.open(settings.state_db, now=now)

    @classmethod
    async def _migrated(cls, database: Database, now: Callable[[], float]) -> Self:
        try:
            await database.migrate(MIGRATIONS)
        except BaseException:
            await database.close()
            raise
        return cls(database, now=now)

    @property
    def engine(self) -> DatabaseEngine:
        return self.database.engine

    async def close(self) -> None:
        await self.database.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # the change feed

    async def announce(self, kind: ChangeKind, job_id: str) -> None:
        """Tell every other process on this registry that the job changed (PostgreSQL: a NOTIFY; SQLite:
        nothing, its processes see changes by reading the file)."""
        await self.database.announce(f"{kind}:{job_id}")

    def changes(self) -> AbstractAsyncContextManager[AsyncIterator[tuple[str, str]]]:
        """An async context manager: inside it, an async iterator of the (kind, id) other processes announce
        from when it was entered (never this store's own). On SQLite the iterator never yields: iterate it in a
        task and cancel that task to stop.

            async with store.changes() as feed:
                async for kind, job_id in feed: ...
        """
        return self._changes()

    @asynccontextmanager
    async def _changes(self) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        async with self.database.listen() as payloads:
            yield _changes_of(payloads)

    # files

    async def save_file(self, info: FileInfo, local_path: str | None = None, *, owner: str | None = None) -> FileRecord:
        """Keep the file's metadata; the local path and the owner are kept once known."""
        async with self.database.transaction() as db:
            await db.execute(
                """INSERT INTO files (id, snapshot, local_path, saved_at, owner) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot,
                   local_path = COALESCE(excluded.local_path, files.local_path), saved_at = excluded.saved_at,
                   owner = COALESCE(files.owner, excluded.owner)""",
                (info.id, info.model_dump_json(), local_path, self._now(), owner),
            )
            rows = await db.fetch("SELECT snapshot, local_path, owner FROM files WHERE id = ?", (info.id,))
        return _file_record(rows[0])

    async def get_file(self, file_id: str) -> FileRecord | None:
        rows = await self.database.fetch("SELECT snapshot, local_path, owner FROM files WHERE id = ?", (file_id,))
        return _file_record(rows[0]) if rows else None

    # batches

    async def save_batch(
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
        the stored record, as it is after this call, is what comes back. The read and the write hold the
        batch's lock: of two replicas saving it at once, the second compares with the first's snapshot.
        A new batch, or a snapshot that differs from the stored one, is announced to the other processes on
        the registry once committed (`announce`: the replicas of a team server tell their own subscribers).
        """
        now = self._now()
        snapshot = batch.model_copy(update={"input_path": None, "results_path": None}).model_dump_json()
        async with self.database.transaction() as db:
            await db.lock(f"batch:{batch.id}")
            if input_path is None and batch.input_file_id:
                rows = await db.fetch("SELECT local_path FROM files WHERE id = ?", (batch.input_file_id,))
                input_path = rows[0]["local_path"] if rows else None
            stored = await db.fetch("SELECT snapshot FROM batches WHERE id = ?", (batch.id,))
            known = Batch.model_validate_json(stored[0]["snapshot"]) if stored else None
            if known is not None and is_behind(batch, known):
                snapshot = stored[0]["snapshot"]
                batch = known
            elif known is not None and known.resource and batch.resource is None:  # fetch_results saves it unmarked
                batch = batch.model_copy(update={"resource": known.resource})
                snapshot = batch.model_copy(update={"input_path": None, "results_path": None}).model_dump_json()
            await db.execute(
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
            await db.execute(
                """INSERT INTO status_history (batch_id, status, seen_at) VALUES (?, ?, ?)
                   ON CONFLICT (batch_id, status) DO NOTHING""",
                (batch.id, batch.status, now),
            )
            rows = await db.fetch(f"{_BATCH_SELECT} WHERE id = ?", (batch.id,))
        if not stored or stored[0]["snapshot"] != snapshot:
            await self.announce("batch", batch.id)
        return _batch_record(rows[0])

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        rows = await self.database.fetch(f"{_BATCH_SELECT} WHERE id = ?", (batch_id,))
        return _batch_record(rows[0]) if rows else None

    async def find_by_idempotency_key(self, key: str, *, owner: str | None = None) -> BatchRecord | None:
        """The batch created under `key` by `owner` (each user's keys are their own; None: made without sign-in)."""
        mine = "owner = ?" if owner is not None else "owner IS NULL"
        params = (key, owner) if owner is not None else (key,)
        rows = await self.database.fetch(
            f"{_BATCH_SELECT} WHERE idempotency_key = ? AND {mine} ORDER BY first_seen LIMIT 1", params
        )
        return _batch_record(rows[0]) if rows else None

    async def list_batches(
        self, *, limit: int | None = None, active_only: bool = False, owner: str | None = None
    ) -> list[BatchRecord]:
        """Newest first: by the service's creation time, then by when this registry first saw them.

        `owner`: only that user's batches (None: everyone's)."""
        conditions = [*(["terminal = 0"] if active_only else []), *(["owner = ?"] if owner is not None else [])]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        created = self.database.json_text("snapshot", "created_at")
        order = f"ORDER BY COALESCE({created}, '') DESC, first_seen DESC, id DESC"
        params = (owner,) if owner is not None else ()
        limited = f"LIMIT {int(limit)}" if limit else ""
        rows = await self.database.fetch(f"{_BATCH_SELECT} {where} {order} {limited}", params)
        return [_batch_record(row) for row in rows]

    async def history(self, batch_id: str) -> list[StatusChange]:
        rows = await self.database.fetch(
            f"SELECT status, seen_at FROM status_history WHERE batch_id = ? {_HISTORY_ORDER}", (batch_id,)
        )
        return [StatusChange(status=row["status"], seen_at=_when(row["seen_at"])) for row in rows]

    # results

    async def save_results_summary(self, summary: FetchSummary) -> None:
        """Keep the summary (served as batch://jobs/{id}/results) and the results path on the batch."""
        async with self.database.transaction() as db:
            await db.execute(
                """INSERT INTO results (batch_id, summary, saved_at) VALUES (?, ?, ?)
                   ON CONFLICT (batch_id) DO UPDATE SET summary = excluded.summary, saved_at = excluded.saved_at""",
                (summary.batch_id, summary.model_dump_json(), self._now()),
            )
            if summary.results_path:
                await db.execute(
                    "UPDATE batches SET results_path = ? WHERE id = ?", (summary.results_path, summary.batch_id)
                )

    async def results_summary(self, batch_id: str) -> FetchSummary | None:
        rows = await self.database.fetch("SELECT summary FROM results WHERE batch_id = ?", (batch_id,))
        return FetchSummary.model_validate_json(rows[0]["summary"]) if rows else None

    # leases (aoai_batch/leases.py)

    async def take_leases(
        self, kind: LeaseKind, ids: Sequence[str], holder: str, *, ttl: float, now: float | None = None
    ) -> set[str]:
        """Take (or renew) the leases of these jobs that are free, expired, `holder`'s own or held by a process
        of this host that died; the ids taken. Each take is one conditional upsert, atomic on both engines:
        of two processes taking the same lease at once, one wins."""
        if not ids:
            return set()
        now = self._now() if now is None else now
        taken: set[str] = set()
        async with self.database.transaction() as db:
            rows = await db.fetch(
                f"SELECT id, holder FROM leases WHERE kind = ? AND id IN ({', '.join('?' for _ in ids)})",
                (kind, *ids),
            )
            held = {row["id"]: row["holder"] for row in rows}
            for job_id in ids:
                gone = held[job_id] if job_id in held and holder_is_gone(held[job_id]) else ""
                changed = await db.execute(
                    """INSERT INTO leases (kind, id, holder, expires_at) VALUES (?, ?, ?, ?)
                       ON CONFLICT (kind, id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                       WHERE leases.holder = excluded.holder OR leases.expires_at <= ? OR leases.holder = ?""",
                    (kind, job_id, holder, now + ttl, now, gone),
                )
                if changed == 1:
                    taken.add(job_id)
        return taken

    async def release_lease(self, kind: LeaseKind, job_id: str, holder: str) -> None:
        async with self.database.transaction() as db:
            await db.execute("DELETE FROM leases WHERE kind = ? AND id = ? AND holder = ?", (kind, job_id, holder))


def _file_record(row: Row) -> FileRecord:
    return FileRecord(
        file=FileInfo.model_validate_json(row["snapshot"]), local_path=row["local_path"], owner=row["owner"]
    )


async def _changes_of(payloads: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    async for payload in payloads:
        kind, _, job_id = payload.partition(":")
        if job_id:
            yield kind, job_id
