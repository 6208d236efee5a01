"""Registries on either engine, for tests that run on both: the `open_store` fixture's opener; batches to
save and a clock to move."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aoai_batch.models import Batch
from aoai_batch.store import Store


class StoreOpener(Protocol):
    """Opens a Store on the test's one registry (a SQLite file, or a PostgreSQL database); each call a new
    connection to the same registry, as another process would have."""

    async def __call__(self, *, now: Callable[[], float] = time.time) -> Store: ...


def opener(engine: str, *, path: Path, url: str | None) -> StoreOpener:
    async def open_store(*, now: Callable[[], float] = time.time) -> Store:
        if engine == "postgresql":
            assert url is not None
            return await Store.open_url(url, now=now)
        return await Store.open(path, now=now)

    return open_store


def make_batch(batch_id: str, status: str = "validating", **fields: object) -> Batch:
    terminal = status in {"failed", "completed", "expired", "cancelled"}
    return Batch.model_validate(
        {"id": batch_id, "status": status, "terminal": terminal, "backend": "emulator", **fields}
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now
