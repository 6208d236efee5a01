"""Cost on the service, against the real emulator: estimates at upload, max_cost at create, cost at fetch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from aoai_batch.cost import builtin_price_book
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import BadPriceFile, CostAboveLimit, InvalidInput
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from tests.support.batch_files import write_batch_file


def settings_for(tmp_path: Path, emulator: Emulator, **extra: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "provider": "emulator",
        "api_key": emulator.key,
        "workspace": str(tmp_path),
    }
    return Settings.model_validate({**values, **extra})


@pytest.fixture
async def service(tmp_path: Path, emulator: Emulator, fake_clock: FakeClock) -> AsyncIterator[BatchService]:
    async def sleep(seconds: float) -> None:
        fake_clock.advance(seconds)
        await anyio.lowlevel.checkpoint()

    settings = settings_for(tmp_path, emulator)
    async with BatchService.open(settings, transport=emulator.transport(), sleep=sleep, clock=fake_clock.now) as opened:
        yield opened


MINI = builtin_price_book().price_of("gpt-4o-mini-2024-07-18")


async def test_an_upload_gives_the_estimate_of_the_emulated_deployments_model(
    service: BatchService, tmp_path: Path
) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl", max_tokens=100))

    estimate = uploaded.estimated_cost
    assert estimate is not None
    assert uploaded.validation is not None
    assert uploaded.validation.estimated_cost == estimate
    assert (estimate.model, estimate.model_from, estimate.currency) == ("gpt-4o-mini-2024-07-18", "emulator", "USD")
    assert MINI is not None
    assert estimate.price_date == MINI.date
    assert estimate.input == pytest.approx(uploaded.validation.estimated_input_tokens * MINI.input / 1e6, abs=1e-6)
    assert estimate.output_upper_bound == pytest.approx(300 * MINI.output / 1e6)


async def test_create_refuses_a_batch_above_max_cost_and_starts_nothing(
    service: BatchService, tmp_path: Path, emulator: Emulator
) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl", max_tokens=1_000_000))

    with pytest.raises(CostAboveLimit) as caught:
        await service.create_batch(uploaded.file.id, max_cost=0.01)

    assert caught.value.estimate is not None
    assert caught.value.estimate > 0.01
    assert await emulator.operations.list_batches() == []


async def test_create_starts_a_batch_within_max_cost(service: BatchService, tmp_path: Path) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl", max_tokens=10))

    batch = await service.create_batch(uploaded.file.id, max_cost=1.0)

    assert batch.status == "validating"


async def test_max_cost_estimates_the_services_copy_when_the_local_file_is_gone(
    service: BatchService, tmp_path: Path, emulator: Emulator
) -> None:
    path = write_batch_file(tmp_path / "in.jsonl", max_tokens=1_000_000)
    uploaded = await service.upload_file(path)
    path.unlink()

    estimate = await service.estimate_file(uploaded.file.id)
    with pytest.raises(CostAboveLimit):
        await service.create_batch(uploaded.file.id, max_cost=0.01)

    assert estimate.total_upper_bound is not None
    assert estimate.total_upper_bound > 0.01
    assert await emulator.operations.list_batches() == []


async def test_a_repeated_idempotency_key_returns_the_batch_without_estimating_again(
    service: BatchService, tmp_path: Path
) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl", max_tokens=1_000_000))
    first = await service.create_batch(uploaded.file.id, idempotency_key="k")

    again = await service.create_batch(uploaded.file.id, idempotency_key="k", max_cost=0.000001)

    assert again.id == first.id


async def test_a_negative_max_cost_is_invalid_input(service: BatchService, tmp_path: Path) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    with pytest.raises(InvalidInput):
        await service.create_batch(uploaded.file.id, max_cost=-1)


async def test_fetched_results_cost_what_the_output_lines_report(service: BatchService, tmp_path: Path) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    created = await service.create_batch(uploaded.file.id)
    with anyio.fail_after(30):
        batch = created
        while not batch.terminal:
            batch = await service.get_batch(created.id, wait_seconds=50)
        summary = await service.fetch_results(created.id, output_dir=tmp_path / "out")

    cost = summary.cost
    assert cost is not None
    assert MINI is not None
    assert cost.models == ["gpt-4o-mini-2024-07-18"]  # the model the echo engine answers with, as Azure does
    assert (cost.input_tokens, cost.output_tokens) == (summary.usage.prompt_tokens, summary.usage.completion_tokens)
    expected = summary.usage.prompt_tokens * MINI.input / 1e6 + summary.usage.completion_tokens * MINI.output / 1e6
    assert cost.total == pytest.approx(expected, abs=1e-6)
    stored = await service.results_summary(created.id)
    assert stored is not None
    assert stored.cost == cost


async def test_a_wrong_price_file_stops_the_service_from_opening(tmp_path: Path, emulator: Emulator) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[models.x]\ninput = 1\n", encoding="utf-8")
    settings = settings_for(tmp_path, emulator, prices=prices)
    with pytest.raises(BadPriceFile):
        async with BatchService.open(settings, transport=emulator.transport()):
            pass
