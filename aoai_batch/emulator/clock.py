"""The emulator's clock: real time in a server, a clock that tests move by hand."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class EmulatorClock(Protocol):
    """Where the emulator reads the time (epoch seconds)."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to; safe to advance from another thread than the emulator's."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` and return the new time."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += seconds
            return self._now
