"""Which emulator may advance a batch: a lease in the emulator's database.

Several processes may share one emulator home (two MCP clients, each starting a server with its embedded
emulator). Each batch is advanced by one of them at a time: a lease is a row (batch id, owner, expiry),
taken in one statement so that two takers never both win, renewed while its owner works, and deleted
when the step is saved. An owner that dies leaves a row that expires; the next taker takes it over, and
the work files are cut back to the last saved state (see `lifecycle._WorkFiles`), so no line is lost or
doubled. Expiry is on the emulator's clock: the wall clock in a server, a hand-moved clock in tests.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aoai_batch.sqlite_wal import connect_shared

LEASE_SECONDS = 30.0  # how long a silent owner keeps a batch; renewed every few thousand requests
WAIT_SECONDS = 10.0  # how long an action that must change a batch (a cancel) waits for another owner's step
LOCK_TIMEOUT = 30.0
PAUSE = 0.01

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    batch_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
)
"""
TAKE = """
INSERT INTO leases (batch_id, owner, expires) VALUES (?, ?, ?)
ON CONFLICT (batch_id) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
WHERE leases.owner = excluded.owner OR leases.expires <= ?
"""


class LeaseLost(Exception):
    """Another owner took the batch over (this one was silent past the expiry): its step must not be saved."""


class Leases:
    """This process's (this emulator's) leases, on a connection of their own to the emulator's database."""

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, ttl: float = LEASE_SECONDS, owner: str = ""
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.ttl = ttl
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._depth: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self._db = connect_shared(self.path, timeout=LOCK_TIMEOUT)
        self._db.execute(SCHEMA)

    def close(self) -> None:
        """Give back every lease this owner holds (a step cut short by shutdown is redone by the next taker)."""
        with self._lock:
            if self._db is None:
                return
            self._db.execute("DELETE FROM leases WHERE owner = ?", (self.owner,))
            self._db.close()
            self._db = None
            self._depth.clear()

    def _execute(self, sql: str, params: tuple[object, ...]) -> int:
        with self._lock:
            if self._db is None:
                raise RuntimeError("the emulator's leases are not open")
            return self._db.execute(sql, params).rowcount

    def take(self, batch_id: str) -> bool:
        """Take (or renew) the lease of `batch_id`; False while another owner's lease has not expired."""
        now = self.clock()
        return self._execute(TAKE, (batch_id, self.owner, now + self.ttl, now)) == 1

    def renew(self, batch_id: str) -> None:
        """Push the expiry back; raises LeaseLost if another owner took the batch over meanwhile."""
        taken = "UPDATE leases SET expires = ? WHERE batch_id = ? AND owner = ?"
        if self._execute(taken, (self.clock() + self.ttl, batch_id, self.owner)) != 1:
            raise LeaseLost(f"another emulator took batch {batch_id} over")

    def release(self, batch_id: str) -> None:
        self._execute("DELETE FROM leases WHERE batch_id = ? AND owner = ?", (batch_id, self.owner))

    @contextmanager
    def holding(self, batch_id: str, *, wait: float = 0.0) -> Iterator[bool]:
        """Hold the lease of `batch_id` for the block (reentrant); yields False if another owner keeps it.

        With `wait`, tries again for that many (real) seconds: another owner's step is short.
        """
        if self._depth.get(batch_id):
            self._depth[batch_id] += 1
            try:
                yield True
            finally:
                self._depth[batch_id] -= 1
            return
        if not self._take_within(batch_id, wait):
            yield False
            return
        self._depth[batch_id] = 1
        try:
            yield True
        finally:
            del self._depth[batch_id]
            if self._db is not None:
                self.release(batch_id)

    def _take_within(self, batch_id: str, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while not self.take(batch_id):
            if time.monotonic() >= deadline:
                return False
            time.sleep(PAUSE)
        return True
