"""RunService on the in-process emulator: a run from start to merged results, its view, its listing."""

from __future__ import annotations

from pathlib import Path

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.runs.service import RunService
from tests.support.batch_files import request_line, write_lines
from tests.support.runs import drive, emulator_batches, result_rows


def requests(count: int) -> list[dict[str, object]]:
    return [request_line(f"task-{n}", f"Question {n}?") for n in range(count)]


async def test_a_run_goes_through_its_shards_and_merges_in_input_order(
    runs: RunService, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "big.jsonl", *requests(25))
    started = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source, name="big")
    assert started.status == "running"
    assert started.id.startswith("run_")
    assert started.requests == 25
    assert sum(shard.requests for shard in started.shards) == 25

    finished = await drive(runs, fake_clock, started.id)

    assert finished.status == "completed"
    assert finished.request_counts.completed == 25
    assert finished.progress_percent == 100.0
    assert len(await emulator_batches(emulator)) == len(finished.shards)
    told: list[tuple[float, float | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        told.append((done, total))

    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out", progress=progress)
    assert told == [(0, 3), (3, 3)]
    rows = result_rows(summary.results_path)
    assert [row["custom_id"] for row in rows] == [f"task-{n}" for n in range(25)]
    assert {row["status"] for row in rows} == {"succeeded"}
    assert finished.shard_counts == {"done": 3}
    assert finished.waiting_for is None


async def test_a_run_built_from_prompts_names_each_shards_deployment(runs: RunService, fake_clock: FakeClock) -> None:
    started = await runs.start_run(deployments=["gpt-4o"], prompts=[f"Say {n}" for n in range(12)], name="prompts")
    assert started.requests == 12
    assert [shard.requests for shard in started.shards] == [10, 2]
    finished = await drive(runs, fake_clock, started.id)
    assert finished.status == "completed"
    assert {shard.deployment for shard in finished.shards} == {"gpt-4o"}
    assert finished.name == "prompts"
