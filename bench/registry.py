"""Registry operations per second on PostgreSQL against SQLite, measured in the same run.

Three operations a server does all day, one after another from one task: save a batch's snapshot
(`save_batch`), list the newest 100 of 2,000 batches (`list_batches(limit=100)`), and take a lease
(`take_leases` of one job). SQLite is a file in a temporary folder (WAL, synchronous=FULL); PostgreSQL is
a throwaway server this script starts from the machine's binaries (tests/support/postgres.py), with fsync on
so both engines make each commit durable. Prints each figure and the ratio PostgreSQL/SQLite.

    python bench/registry.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

# The checkout this script is in (its tests package too), whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aoai_batch.models import Batch
from aoai_batch.store import Store
from tests.support.postgres import PostgresServer, find_bindir

SAVES = 500
LISTED = 2_000
LISTS = 100
LEASES = 500


def batch(n: int, status: str = "in_progress") -> Batch:
    return Batch.model_validate(
        {
            "id": f"batch_{n:06d}",
            "status": status,
            "terminal": False,
            "backend": "emulator",
            "created_at": 1_700_000_000 + n,
            "endpoint": "/chat/completions",
            "metadata": {"n": str(n)},
        }
    )


async def rate(count: int, operation: Callable[[int], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for n in range(count):
        await operation(n)
    return count / (time.perf_counter() - started)


async def measure(store: Store) -> dict[str, float]:
    figures = {"save_batch": await rate(SAVES, lambda n: store.save_batch(batch(n)))}
    for n in range(SAVES, LISTED):
        await store.save_batch(batch(n))
    figures["list newest 100 of 2,000"] = await rate(LISTS, lambda n: store.list_batches(limit=100))
    figures["take a lease"] = await rate(
        LEASES, lambda n: store.take_leases("batch", [f"batch_{n:06d}"], "bench:1:x", ttl=60)
    )
    return figures


async def main() -> None:
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (apt-get install -y postgresql): nothing to compare")
    with tempfile.TemporaryDirectory(prefix="aoai-bench-registry-") as tmp:
        async with await Store.open(Path(tmp) / "state.sqlite3") as store:
            sqlite = await measure(store)
    server = PostgresServer(bindir, durable=True).start()
    try:
        async with await Store.open_url(server.new_database()) as store:
            postgres = await measure(store)
    finally:
        server.stop()
    print(f"{'operation':28s} {'SQLite/s':>10s} {'PostgreSQL/s':>13s} {'PG/SQLite':>10s}")
    for name, base in sqlite.items():
        print(f"{name:28s} {base:10.0f} {postgres[name]:13.0f} {postgres[name] / base:10.2f}")


if __name__ == "__main__":
    anyio.run(main)
