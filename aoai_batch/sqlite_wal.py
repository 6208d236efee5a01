"""SQLite files that several processes share (two MCP clients on one home): WAL, a busy timeout, retries.

SQLite's busy timeout makes reads and writes wait out another connection's lock, but switching a new
file to WAL answers SQLITE_BUSY at once when another process is opening it too (two servers starting
together), so that switch, and anything else that must not fail on a passing lock, is retried until
the same deadline.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

T = TypeVar("T")
FIRST_PAUSE = 0.005  # seconds before the first retry; doubled up to MAX_PAUSE
MAX_PAUSE = 0.1


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether `exc` means another connection holds a lock (SQLITE_BUSY / SQLITE_LOCKED, any extended code)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def retry_while_busy(fn: Callable[[], T], timeout: float, *, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn` until it does not fail on a lock, for at most `timeout` seconds; then the last error is raised."""
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, MAX_PAUSE)


def connect_shared(
    path: Path, *, timeout: float, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) to a WAL file, waiting out locks for `timeout` s."""
    db = sqlite3.connect(path, check_same_thread=False, timeout=timeout, isolation_level=None)
    try:
        retry_while_busy(lambda: _use_wal(db), timeout)
        db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db


def _use_wal(db: sqlite3.Connection) -> None:
    # WAL is a property of the file: only its first opener switches it (and needs the exclusive lock).
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode=WAL")
