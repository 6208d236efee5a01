"""A run over two resources: this server's own deployment (limit from AOAI_BATCH_ENQUEUED_TOKENS) and a pool
deployment on another emulator (limit from the pool file); a shard that does not fit the first goes to the next."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.plan import line_tokens
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import EmulatorSettings, Settings
from tests.support.batch_files import request_line, write_lines
from tests.support.http_server import EmulatorServer, ServerThread
from tests.support.runs import SHARD_REQUESTS, STEP_SECONDS, ClockedSleep, emulator_batches, result_rows

WEST_KEY = "west-key-value"
MINI = "gpt-4o-mini"


def lines(count: int) -> list[dict[str, Any]]:
    return [request_line(f"task-{n}", f"Question {n}?") for n in range(count)]


SHARD_TOKENS = sum(line_tokens("/chat/completions", line["body"]) for line in lines(SHARD_REQUESTS))


@pytest.fixture
def west(tmp_path: Path) -> Iterator[EmulatorServer]:
    clock = FakeClock()
    settings = EmulatorSettings(home=tmp_path / "west", time_scale=1.0, key=WEST_KEY)
    emulator = Emulator(settings, clock=clock)
    with ServerThread(emulator.app, emulator) as running:
        yield EmulatorServer(running.url, emulator.key, emulator, clock)


@pytest.fixture
def run_settings(tmp_path: Path, emulator: Emulator, west: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("POOL_WEST_KEY", WEST_KEY)
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(
        f"""
[[deployments]]
name = "west-mini"
endpoint = "{west.url}"
deployment = "{MINI}"
api_key_env = "POOL_WEST_KEY"
enqueued_tokens = {SHARD_TOKENS}
""",
        encoding="utf-8",
    )
    return Settings(
        home=tmp_path / "home",
        workspace=str(tmp_path),
        provider="emulator",
        api_key=emulator.key,
        max_requests=SHARD_REQUESTS,
        pool_path=pool_file,
        enqueued_tokens=f"{MINI}={SHARD_TOKENS}",
    )


@pytest.fixture
async def pooled_runs(
    run_settings: Settings, main_service: BatchService, fake_clock: FakeClock
) -> AsyncIterator[RunService]:
    sleep = ClockedSleep(fake_clock)
    async with RunService.open(run_settings, main_service, now=fake_clock.now, sleep=sleep) as opened:
        yield opened


async def test_a_run_spills_from_this_resource_to_a_pool_resource(
    pooled_runs: RunService, emulator: Emulator, fake_clock: FakeClock, west: EmulatorServer, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "rows.jsonl", *lines(25))
    started = await pooled_runs.start_run(deployments=[MINI, "west-mini"], batch_path=source)
    assert [(load.limit, load.limit_source) for load in started.ledger] == [
        (SHARD_TOKENS, "settings"),
        (SHARD_TOKENS, "pool"),
    ]

    run = await pooled_runs.advance(started.id)

    assert [(shard.state, shard.deployment) for shard in run.shards] == [
        ("submitted", MINI),
        ("submitted", "west-mini"),
        ("queued", None),
    ]
    assert [load.in_flight_tokens for load in run.ledger] == [SHARD_TOKENS, SHARD_TOKENS]
    assert len(await emulator_batches(emulator)) == 1
    assert len(await emulator_batches(west.emulator)) == 1
    for _ in range(100):
        if run.terminal:
            break
        fake_clock.advance(STEP_SECONDS)
        west.clock.advance(STEP_SECONDS)
        run = await pooled_runs.advance(started.id)
    assert run.status == "completed"
    summary = await pooled_runs.fetch_run_results(run.id, output_dir=tmp_path / "out")
    rows = result_rows(summary.results_path)
    assert [row["custom_id"] for row in rows] == [f"task-{n}" for n in range(25)]
    assert {row["status"] for row in rows} == {"succeeded"}
