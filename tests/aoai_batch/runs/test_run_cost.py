"""A run's cost on the in-process emulator: the estimate at start, `max_cost`, the cost from the usage returned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aoai_batch.cost import builtin_price_book
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import CostAboveLimit, InvalidInput
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from tests.support.batch_files import request_line, write_lines
from tests.support.runs import ClockedSleep, drive, emulator_batches

MINI = builtin_price_book().price_of("gpt-4o-mini-2024-07-18")


def questions(count: int) -> list[dict[str, object]]:
    return [request_line(f"task-{n}", f"Question {n}?", max_tokens=20) for n in range(count)]


@pytest.fixture
async def mystery_runs(run_settings: Settings, emulator: Emulator, fake_clock: FakeClock) -> AsyncIterator[RunService]:
    """Runs whose gpt-4o-mini deployment is said to run a model the price book does not know."""
    values = run_settings.model_dump(include={"home", "provider", "api_key", "workspace", "max_requests"})
    settings = Settings.model_validate({**values, "deployment_models": "gpt-4o-mini=mystery-model-1"})
    sleep = ClockedSleep(fake_clock)
    async with (
        BatchService.open(
            settings, transport=emulator.transport(), sleep=sleep, clock=fake_clock.now, now=fake_clock.now
        ) as main,
        RunService.open(settings, main, now=fake_clock.now, sleep=sleep) as runs,
    ):
        yield runs


async def test_a_run_gives_its_estimate_from_its_tokens_and_its_lines_max_tokens(runs: RunService) -> None:
    started = await runs.start_run(
        deployments=["gpt-4o-mini"], prompts=["Say 1", "Say 2", "Say 3"], body={"max_tokens": 50}
    )

    estimate = started.estimated_cost
    assert estimate is not None
    assert MINI is not None
    assert (estimate.model, estimate.model_from, estimate.currency) == ("gpt-4o-mini-2024-07-18", "emulator", "USD")
    assert estimate.price_date == MINI.date
    assert estimate.input == pytest.approx(started.estimated_input_tokens * MINI.input / 1e6, abs=1e-6)
    assert estimate.output_upper_bound == pytest.approx(3 * 50 * MINI.output / 1e6, abs=1e-6)
    assert estimate.input is not None
    assert estimate.output_upper_bound is not None
    assert estimate.total_upper_bound == pytest.approx(estimate.input + estimate.output_upper_bound, abs=1e-6)
    assert estimate.reason is None
    assert (await runs.get_run(started.id)).estimated_cost == estimate  # kept with the run


async def test_a_batch_file_run_bounds_the_output_by_its_lines_max_tokens(runs: RunService, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "big.jsonl", *questions(25))  # max_tokens 20 each

    started = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source)

    assert started.estimated_cost is not None
    assert MINI is not None
    assert started.estimated_cost.output_upper_bound == pytest.approx(25 * 20 * MINI.output / 1e6, abs=1e-6)


async def test_without_max_tokens_on_every_line_the_output_has_no_bound(runs: RunService) -> None:
    started = await runs.start_run(deployments=["gpt-4o-mini"], prompts=["Say 1", "Say 2"])

    estimate = started.estimated_cost
    assert estimate is not None
    assert estimate.input is not None
    assert (estimate.output_upper_bound, estimate.total_upper_bound) == (None, None)
    assert estimate.reason is not None


async def test_deployments_of_different_models_are_priced_as_the_first_and_say_so(runs: RunService) -> None:
    started = await runs.start_run(deployments=["gpt-4o", "gpt-4o-mini"], prompts=["Say 1"], body={"max_tokens": 5})

    estimate = started.estimated_cost
    assert estimate is not None
    assert estimate.model == "gpt-4o-2024-08-06"
    assert estimate.input is not None
    assert estimate.reason is not None
    assert "gpt-4o-mini-2024-07-18" in estimate.reason


async def test_an_unknown_model_gives_null_amounts_with_a_reason(mystery_runs: RunService) -> None:
    started = await mystery_runs.start_run(deployments=["gpt-4o-mini"], prompts=["Say 1"], body={"max_tokens": 5})

    estimate = started.estimated_cost
    assert estimate is not None
    assert estimate.model == "mystery-model-1"
    assert (estimate.input, estimate.output_upper_bound, estimate.total_upper_bound) == (None, None, None)
    assert estimate.reason is not None
    assert "AOAI_BATCH_PRICES" in estimate.reason


async def test_max_cost_refuses_a_run_above_it_and_saves_nothing(
    runs: RunService, emulator: Emulator, run_settings: Settings
) -> None:
    with pytest.raises(CostAboveLimit) as caught:
        await runs.start_run(
            deployments=["gpt-4o-mini"],
            prompts=[f"Say {n}" for n in range(25)],
            body={"max_tokens": 100_000},
            max_cost=0.01,
        )

    assert caught.value.kind == "over_budget"
    assert caught.value.estimate is not None
    assert caught.value.estimate > 0.01
    assert (await runs.list_runs()).runs == []
    assert await emulator_batches(emulator) == []
    assert list((run_settings.home / "runs").glob("*")) == []  # the run's folder is gone too


async def test_max_cost_refuses_a_run_whose_cost_cannot_be_estimated(mystery_runs: RunService) -> None:
    with pytest.raises(CostAboveLimit) as caught:
        await mystery_runs.start_run(deployments=["gpt-4o-mini"], prompts=["Say 1"], max_cost=100.0)

    assert caught.value.estimate is None
    assert (await mystery_runs.list_runs()).runs == []


async def test_a_run_within_max_cost_starts_and_a_bad_max_cost_is_refused(runs: RunService) -> None:
    started = await runs.start_run(deployments=["gpt-4o-mini"], prompts=["Say 1"], body={"max_tokens": 5}, max_cost=1.0)
    assert started.status == "running"

    with pytest.raises(InvalidInput):
        await runs.start_run(deployments=["gpt-4o-mini"], prompts=["Say 1"], max_cost=-1.0)


async def test_the_cost_after_fetching_is_the_sum_of_the_shards_costs(
    runs: RunService, main_service: BatchService, fake_clock: FakeClock, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "big.jsonl", *questions(25))
    started = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source)
    finished = await drive(runs, fake_clock, started.id)

    summary = await runs.fetch_run_results(finished.id, output_dir=tmp_path / "out")

    shard_costs = []
    for shard in finished.shards:
        assert shard.batch_id is not None
        fetched = await main_service.results_summary(shard.batch_id)
        assert fetched is not None
        assert fetched.cost is not None
        shard_costs.append(fetched.cost)
    cost = summary.cost
    assert cost is not None
    assert len(shard_costs) == 3
    assert cost.total is not None
    assert cost.total > 0
    assert cost.total == pytest.approx(sum(part.total or 0.0 for part in shard_costs), abs=1e-6)
    assert cost.input_tokens == sum(part.input_tokens for part in shard_costs) == summary.usage.prompt_tokens
    assert cost.output_tokens == summary.usage.completion_tokens
    assert (cost.currency, cost.models) == ("USD", ["gpt-4o-mini-2024-07-18"])
    assert (await runs.results_summary(finished.id)) == summary  # batch://runs/{run_id}/results serves it
