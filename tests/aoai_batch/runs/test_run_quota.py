"""Runs against the emulator's enqueued-token quota, in both of Azure's behaviours: the create refused at once
(`fail_fast`) or the batch failed in validation (`validate`), both with `token_limit_exceeded` naming the limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.plan import line_tokens
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import EmulatorSettings, QuotaMode
from tests.support.batch_files import request_line, write_lines
from tests.support.clock import VALIDATION
from tests.support.runs import SHARD_REQUESTS, drive, emulator_batches, result_rows

MINI = "gpt-4o-mini"


def lines(count: int, prefix: str = "task") -> list[dict[str, Any]]:
    return [request_line(f"{prefix}-{n}", f"Question {n}?") for n in range(count)]


def tokens_of(requests: list[dict[str, Any]]) -> int:
    return sum(line_tokens("/chat/completions", request["body"]) for request in requests)


SHARD_TOKENS = tokens_of(lines(SHARD_REQUESTS))
LIMIT = SHARD_TOKENS * 3 // 2  # one shard fits; two do not


@pytest.fixture(params=["fail_fast", "validate"])
def emulator_settings(tmp_path: Path, request: pytest.FixtureRequest) -> EmulatorSettings:
    mode: QuotaMode = request.param
    return EmulatorSettings(
        home=tmp_path / "emulator", time_scale=1.0, key="test-key", enqueued_tokens={MINI: LIMIT}, quota_mode=mode
    )


async def test_a_shard_refused_for_quota_backs_off_learns_the_limit_and_goes_in_later(
    runs: RunService, main_service: BatchService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    # another job holds most of the deployment's quota
    other = write_lines(tmp_path / "other.jsonl", *lines(SHARD_REQUESTS, "other"))
    uploaded = await main_service.upload_file(other)
    outside = await main_service.create_batch(uploaded.file.id)
    started = await runs.start_run(deployments=[MINI], batch_path=write_lines(tmp_path / "rows.jsonl", *lines(25)))

    run = await runs.advance(started.id)
    if emulator.settings.quota_mode == "validate":  # accepted, then failed in validation
        assert run.shards[0].state == "submitted"
        fake_clock.advance(VALIDATION)
        run = await runs.advance(started.id)

    refused = run.shards[0]
    assert refused.state == "queued"
    assert refused.attempt == 1
    assert refused.next_try_at is not None
    assert refused.error is not None
    assert refused.error.startswith("token_limit_exceeded: ")
    assert run.ledger[0].limit == LIMIT
    assert run.ledger[0].limit_source == "learned"
    assert run.waiting_for is not None
    assert run.waiting_for.startswith(f"3 shards queued: {MINI} has 0 of {LIMIT} enqueued tokens in flight; ")
    assert "shard 0 retries at " in run.waiting_for

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "completed"
    assert finished.shards[0].attempt >= 2
    run_batches = [b for b in await emulator_batches(emulator) if b != outside.id]
    if emulator.settings.quota_mode == "fail_fast":  # a refused create makes no batch
        assert len(run_batches) == len(finished.shards)
    else:  # each attempt made one, and those refused failed in validation
        assert len(run_batches) == sum(shard.attempt for shard in finished.shards)
    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out")
    assert [row["custom_id"] for row in result_rows(summary.results_path)] == [f"task-{n}" for n in range(25)]
    assert summary.counts.succeeded == 25


async def test_a_limit_below_one_shard_is_learned_and_the_shards_split_to_fit(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    long = [request_line(f"long-{n}", f"Question {n}? " * 4) for n in range(SHARD_REQUESTS)]
    assert tokens_of(long) > LIMIT  # one shard of 10 is more than the limit holds
    started = await runs.start_run(deployments=[MINI], batch_path=write_lines(tmp_path / "long.jsonl", *long))
    assert [shard.estimated_tokens for shard in started.shards] == [tokens_of(long)]

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "completed"
    assert finished.request_counts.completed == SHARD_REQUESTS
    assert finished.shards[0].state == "cancelled"
    assert (finished.shards[0].error or "").startswith("split: ")
    done = [shard for shard in finished.shards if shard.state == "done"]
    assert len(done) >= 2
    assert all(shard.estimated_tokens <= LIMIT for shard in done)
    assert sum(shard.requests for shard in done) == SHARD_REQUESTS
