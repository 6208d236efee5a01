"""The SQLite engine: one file (WAL) shared by the processes of one home.

One connection guarded by a lock keeps concurrent tasks safe; every statement runs in a worker thread
(SQLite blocks). WAL with a busy timeout lets a CLI and servers of several clients share the file: opening,
migrating and every write wait out another process's lock (`sqlite_wal`), and one held for longer is a
`RegistryLocked` naming the file. A process killed in the middle of a write loses at most the uncommitted
transaction: SQLite's journal guarantees it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread

from aoai_batch.db import DatabaseEngine, Row, statements
from aoai_batch.errors import BatchToolError, InvalidInput, NoSpace, NotWritable, RegistryLocked
from aoai_batch.sqlite_wal import connect_shared, is_busy, retry_while_busy

T = TypeVar("T")


class SqliteDatabase:
    """A registry file; `open` creates its folder and the file (in WAL mode) when missing."""

    engine: DatabaseEngine = "sqlite"

    def __init__(self, path: Path, *, lock_timeout: float) -> None:
        self.path = Path(path)
        self._lock_timeout = lock_timeout
        self._thread_lock = threading.Lock()  # the connection, between worker threads
        self._task_lock = anyio.Lock()  # one transaction (or read) at a time, between tasks
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
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    @classmethod
    async def open(cls, path: Path, *, lock_timeout: float) -> SqliteDatabase:
        return await anyio.to_thread.run_sync(lambda: cls(path, lock_timeout=lock_timeout))

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

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            with self._thread_lock, self._translated():
                return fn(self._db)

        return await anyio.to_thread.run_sync(call)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        """A write transaction: BEGIN IMMEDIATE waits (up to the lock timeout) for another process's write."""
        async with self._task_lock:
            try:  # BEGIN too: a cancel while it runs in its thread still leaves a transaction to roll back
                await self._call(lambda db: db.execute("BEGIN IMMEDIATE"))
                yield SqliteTransaction(self)
                await self._call(lambda db: db.execute("COMMIT"))
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._call(_rollback)  # a failed COMMIT (a full disk) may leave it open
                raise

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._task_lock:
            return await self._call(lambda db: _rows(db.execute(sql, tuple(params))))

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    async def migrate(self, migrations: Sequence[str]) -> None:
        async with self._task_lock:
            await anyio.to_thread.run_sync(lambda: self._migrate_now(migrations))

    def _migrate_now(self, migrations: Sequence[str]) -> None:
        """The version is read again under the write lock: no migration runs twice."""
        with self._thread_lock, self._translated():
            retry_while_busy(lambda: self._migrate(migrations), self._lock_timeout)

    def _migrate(self, migrations: Sequence[str]) -> None:
        target = len(migrations)
        if self._db.execute("PRAGMA user_version").fetchone()[0] == target:
            return  # the usual case: opening needs no write lock
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > target:
                raise InvalidInput(
                    f"The job registry {self.path} was written by a newer version (schema {version}); upgrade."
                )
            for script in migrations[version:]:
                for statement in statements(script):
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {target}")
            self._db.execute("COMMIT")
        except BaseException:
            _rollback(self._db)
            raise

    async def announce(self, payload: str) -> None:
        """Nothing: the processes of one SQLite home see a change by reading the file."""

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[AsyncIterator[str]]:
        yield _never()

    async def close(self) -> None:
        async with self._task_lock:
            await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._thread_lock:
            self._db.close()


class SqliteTransaction:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._database._call(lambda db: db.execute(sql, tuple(params)).rowcount)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._database._call(lambda db: db.executemany(sql, [tuple(row) for row in rows]))

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._database._call(lambda db: _rows(db.execute(sql, tuple(params))))

    async def lock(self, name: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the file's one write lock."""


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    cursor.row_factory = sqlite3.Row
    return cast(list[Row], cursor.fetchall())  # sqlite3.Row reads by column name like a mapping


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")


async def _never() -> AsyncIterator[str]:
    await anyio.sleep_forever()
    yield ""  # pragma: no cover - never reached
