"""Runs on the emulator's fake clock: the service's sleep moving the clock, and a run driven to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.lowlevel

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.models import Run
from aoai_batch.runs.service import RunService
from tests.support.batch_files import jsonl

STEP_SECONDS = 600.0  # clock seconds between two steps of a driven run: past validation and a few requests
MAX_STEPS = 500
SHARD_REQUESTS = 10  # the runs' tests' AOAI_BATCH_MAX_REQUESTS: a few requests make several shards


class ClockedSleep:
    """A sleep that moves the emulator's fake clock instead of waiting (by at least `minimum` seconds)."""

    def __init__(self, clock: FakeClock, minimum: float = 0.0) -> None:
        self.clock = clock
        self.minimum = minimum

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(max(seconds, self.minimum))
        await anyio.lowlevel.checkpoint()


async def drive(runs: RunService, clock: FakeClock, run_id: str, *, step_seconds: float = STEP_SECONDS) -> Run:
    """Advance the run, moving the clock between steps, until it is terminal."""
    for _ in range(MAX_STEPS):
        run = await runs.advance(run_id)
        if run.terminal:
            return run
        clock.advance(step_seconds)
    raise AssertionError(f"run {run_id} did not end within {MAX_STEPS} steps")


async def emulator_batches(emulator: Emulator) -> list[str]:
    """Every batch the emulator holds (to count creates), oldest first."""
    return [record.id for record in reversed(await emulator.operations.list_batches())]


def result_rows(path: str | None) -> list[dict[str, Any]]:
    """The rows of a results JSONL file."""
    assert path is not None
    return jsonl(Path(path).read_bytes())
