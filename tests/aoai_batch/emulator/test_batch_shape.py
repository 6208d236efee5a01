"""A batch carries every field of the seeds' samples at every status, `null` when unset, in both wire formats."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import orjson
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import EmulatorSettings
from tests.support.batch_files import request_line
from tests.support.clients import Q
from tests.support.clock import DONE, VALIDATION
from tests.support.seeds import batch_samples

Drive = Callable[[httpx2.AsyncClient, FakeClock, str], Awaitable[None]]


async def just_created(http: httpx2.AsyncClient, clock: FakeClock, batch_id: str) -> None:
    return None


def advanced(seconds: float) -> Drive:
    async def drive(http: httpx2.AsyncClient, clock: FakeClock, batch_id: str) -> None:
        clock.advance(seconds)

    return drive


def cancelled_after(seconds: float) -> Drive:
    async def drive(http: httpx2.AsyncClient, clock: FakeClock, batch_id: str) -> None:
        clock.advance(VALIDATION + 1)
        (await http.post(f"/openai/batches/{batch_id}/cancel{Q}")).raise_for_status()
        clock.advance(seconds)

    return drive


GOOD = [request_line(f"task-{i}") for i in range(10)]
DUPLICATE = [request_line("a"), request_line("a")]
SLOW = {"seconds_per_request": 3 * 3600, "max_processing_seconds": 10**9}  # 30 hours of work: it expires
# (status, emulator settings, input lines, how to get there, the fields that must still be null)
CASES: list[tuple[str, dict[str, Any], list[Any], Drive, set[str]]] = [
    (
        "validating",
        {},
        GOOD,
        just_created,
        {"in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at"}
        | {"cancelled_at", "output_file_id", "error_file_id", "metadata"},
    ),
    ("in_progress", {}, GOOD, advanced(VALIDATION + 1), {"finalizing_at", "completed_at", "output_file_id"}),
    ("finalizing", {}, GOOD, advanced(VALIDATION + 10 * 60 + 1), {"completed_at", "output_file_id"}),
    ("completed", {}, GOOD, advanced(DONE), {"failed_at", "expired_at", "cancelling_at", "cancelled_at"}),
    ("failed", {}, DUPLICATE, advanced(DONE), {"in_progress_at", "completed_at", "output_file_id"}),
    ("cancelling", {}, GOOD, cancelled_after(0), {"cancelled_at", "completed_at", "output_file_id"}),
    ("cancelled", {}, GOOD, cancelled_after(DONE), {"completed_at", "failed_at", "expired_at"}),
    ("expired", SLOW, GOOD, advanced(DONE), {"completed_at", "failed_at", "cancelled_at"}),
]


@functools.cache
def seed_keys() -> frozenset[str]:
    """Every key of the batch objects in the seeds' samples (read at test time, not at import)."""
    return frozenset(key for sample in batch_samples() for key in sample)


def test_the_seeds_show_batches_with_twenty_fields() -> None:
    assert len(seed_keys()) == 20
    assert {"cancelling_at", "errors", "metadata", "request_counts", "output_file_id"} <= seed_keys()


@pytest.mark.parametrize("wire_format", ["standard", "legacy"])
@pytest.mark.parametrize(("status", "settings", "lines", "drive", "nulls"), CASES, ids=[c[0] for c in CASES])
async def test_a_batch_has_every_field_of_the_seeds_samples_at_every_status(
    tmp_path: Path,
    fake_clock: FakeClock,
    wire_format: str,
    status: str,
    settings: dict[str, Any],
    lines: list[Any],
    drive: Drive,
    nulls: set[str],
) -> None:
    emulator_settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, format=wire_format, **settings)
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    with anyio.fail_after(30):
        async with (
            Emulator(emulator_settings, clock=fake_clock) as emulator,
            httpx2.AsyncClient(
                transport=emulator.transport(), base_url="http://emu", headers={"api-key": emulator.key}
            ) as http,
        ):
            files = {"file": ("in.jsonl", body, "application/jsonl")}
            file_id = (await http.post(f"/openai/files{Q}", data={"purpose": "batch"}, files=files)).json()["id"]
            create = {"input_file_id": file_id, "endpoint": "/chat/completions", "completion_window": "24h"}
            created = (await http.post(f"/openai/batches{Q}", json=create)).json()
            await drive(http, fake_clock, created["id"])
            batch = (await http.get(f"/openai/batches/{created['id']}{Q}")).json()
            listed = (await http.get(f"/openai/batches{Q}")).json()["data"][0]
    assert set(created) == seed_keys()
    assert set(batch) == seed_keys()
    assert set(listed) == seed_keys()
    assert batch["status"].lower().replace("inprogress", "in_progress") == status
    unset = (None, "") if wire_format == "legacy" else (None,)  # legacy sends a missing output file as ""
    assert {key for key in nulls if batch[key] not in unset} == set()
    assert set(batch["request_counts"]) == {"total", "completed", "failed"}
