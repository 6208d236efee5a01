"""The emulator's persistent state: SQLite for records, a folder for file contents.

One connection shared by worker threads behind a lock; records are stored as JSON beside the columns
that queries need.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aoai_batch.emulator.lease import Leases
from aoai_batch.emulator.records import EmulatedBatch, EmulatedFile
from aoai_batch.sqlite_wal import connect_shared, retry_while_busy

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    expires INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_active ON batches (active);
"""
# Added for the enqueued-token quota: the deployment a batch's input names and the tokens it holds while active.
# A home made before has neither: they are added (and its batches hold nothing).
QUOTA_COLUMNS = {"deployment": "TEXT", "held": "INTEGER NOT NULL DEFAULT 0"}
ENQUEUED = "SELECT coalesce(sum(held), 0) FROM batches WHERE active = 1 AND deployment = ?"
LOCK_TIMEOUT = 30.0  # seconds a statement waits for another process sharing this home


class State:
    """Records in `home/state.sqlite3`, file contents in `home/files/`, batches' work files in `home/work/`."""

    def __init__(self, home: Path, clock: Callable[[], float] = time.time) -> None:
        self.home = Path(home)
        self.files_dir = self.home / "files"
        self.work_dir = self.home / "work"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.leases = Leases(self.home / "state.sqlite3", clock=clock)  # other processes may share this home

    def open(self) -> None:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        db = connect_shared(self.home / "state.sqlite3", timeout=LOCK_TIMEOUT)
        db.executescript(SCHEMA)
        retry_while_busy(lambda: _add_quota_columns(db), LOCK_TIMEOUT)
        self._db = db
        self.leases.open()

    def close(self) -> None:
        self.leases.close()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the emulator's state is not open; use `async with Emulator(...)`")
        return self._db

    def file_path(self, file_id: str) -> Path:
        return self.files_dir / file_id

    # files

    def put_file(self, record: EmulatedFile) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO files (id, kind, expires, data) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (record.id, record.kind, record.expires_at is not None, record.model_dump_json()),
            )

    def get_file(self, file_id: str) -> EmulatedFile | None:
        with self._lock:
            row = self.db.execute("SELECT data FROM files WHERE id = ?", (file_id,)).fetchone()
        return EmulatedFile.model_validate_json(row[0]) if row else None

    def list_files(self) -> list[EmulatedFile]:
        """Every file, newest first."""
        with self._lock:
            rows = self.db.execute("SELECT data FROM files ORDER BY seq DESC").fetchall()
        return [EmulatedFile.model_validate_json(row[0]) for row in rows]

    def delete_file(self, file_id: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self.file_path(file_id).unlink(missing_ok=True)

    def uploads_without_expiry(self) -> int:
        with self._lock:
            row = self.db.execute("SELECT count(*) FROM files WHERE kind = 'upload' AND expires = 0").fetchone()
        return int(row[0])

    # batches

    def put_batch(self, record: EmulatedBatch) -> None:
        with self._lock:
            self._put_batch(record)

    def _put_batch(self, record: EmulatedBatch) -> None:
        self.db.execute(
            "INSERT INTO batches (id, active, deployment, held, data) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET active = excluded.active, deployment = excluded.deployment,"
            " held = excluded.held, data = excluded.data",
            (record.id, record.active, record.model, record.held_tokens, record.model_dump_json()),
        )

    def put_new_batch(self, record: EmulatedBatch, *, limit: int) -> int | None:
        """Save a new batch holding `record.held_tokens` of its deployment's quota if they fit under `limit` (what
        the active batches of that deployment hold, in every process sharing this home, plus its own).

        The count and the insert are one transaction that holds the database's write lock, so two
        processes sharing this home never both take the last tokens. Returns None when saved, else the
        tokens the deployment's active batches held (nothing is saved).
        """
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")  # waits out another process's write (the busy timeout)
            try:
                held = int(self.db.execute(ENQUEUED, (record.model,)).fetchone()[0])
                if held + record.held_tokens > limit:
                    self.db.execute("ROLLBACK")
                    return held
                self._put_batch(record)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            return None

    def get_batch(self, batch_id: str) -> EmulatedBatch | None:
        with self._lock:
            row = self.db.execute("SELECT data FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return EmulatedBatch.model_validate_json(row[0]) if row else None

    def list_batches(self) -> list[EmulatedBatch]:
        """Every batch, newest first."""
        with self._lock:
            rows = self.db.execute("SELECT data FROM batches ORDER BY seq DESC").fetchall()
        return [EmulatedBatch.model_validate_json(row[0]) for row in rows]

    def active_batch_ids(self, deployment: str | None = None) -> list[str]:
        """The batches not yet terminal, oldest first (only those of `deployment`, when given)."""
        with self._lock:
            if deployment is None:
                rows = self.db.execute("SELECT id FROM batches WHERE active = 1 ORDER BY seq").fetchall()
            else:
                query = "SELECT id FROM batches WHERE active = 1 AND deployment = ? ORDER BY seq"
                rows = self.db.execute(query, (deployment,)).fetchall()
        return [str(row[0]) for row in rows]

    def input_in_use(self, file_id: str) -> bool:
        """Whether a batch that is not finished reads this file."""
        return any(b.input_file_id == file_id for b in map(self.get_batch, self.active_batch_ids()) if b)


def _add_quota_columns(db: sqlite3.Connection) -> None:
    """Add the quota's columns to a home made before them (under the write lock: another process may too)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        present = {row[1] for row in db.execute("PRAGMA table_info(batches)")}
        for name, kind in QUOTA_COLUMNS.items():
            if name not in present:
                db.execute(f"ALTER TABLE batches ADD COLUMN {name} {kind}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
