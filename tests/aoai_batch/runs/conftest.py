"""Fixtures of the runs' tests: a BatchService and a RunService on the in-process emulator's fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from tests.support.runs import SHARD_REQUESTS, ClockedSleep


@pytest.fixture
def registry_engine() -> str:
    """Where the runs' registry is: SQLite; a module that runs on both engines parametrizes it."""
    return "sqlite"


@pytest.fixture
def run_settings(tmp_path: Path, emulator: Emulator, registry_engine: str, request: pytest.FixtureRequest) -> Settings:
    url = request.getfixturevalue("postgres_url") if registry_engine == "postgresql" else None
    return Settings.model_validate(
        {
            "home": tmp_path / "home",
            "database_url": url,
            "provider": "emulator",
            "api_key": emulator.key,
            "workspace": str(tmp_path),
            "max_requests": SHARD_REQUESTS,
        }
    )


@pytest.fixture
async def main_service(
    run_settings: Settings, emulator: Emulator, fake_clock: FakeClock
) -> AsyncIterator[BatchService]:
    sleep = ClockedSleep(fake_clock)
    async with BatchService.open(
        run_settings, transport=emulator.transport(), sleep=sleep, clock=fake_clock.now, now=fake_clock.now
    ) as opened:
        yield opened


@pytest.fixture
async def runs(run_settings: Settings, main_service: BatchService, fake_clock: FakeClock) -> AsyncIterator[RunService]:
    sleep = ClockedSleep(fake_clock)
    async with RunService.open(run_settings, main_service, now=fake_clock.now, sleep=sleep) as opened:
        yield opened
