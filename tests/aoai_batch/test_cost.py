"""The price book, the model behind a deployment, estimates before a batch runs and costs after (aoai_batch.cost)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from aoai_batch.cost import (
    NO_OUTPUT_BOUND,
    ModelUsage,
    PriceBook,
    Pricing,
    builtin_price_book,
    check_max_cost,
    describe_estimate,
    estimate_cost,
    load_price_book,
    pricing_for,
    sum_costs,
    sum_usage,
    usage_cost,
    usage_costs,
)
from aoai_batch.errors import BadPriceFile, CostAboveLimit
from aoai_batch.models import BuildResult, BuiltFile, ValidationReport
from aoai_batch.settings import Settings

COMMON_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini", "gpt-5", "gpt-5-mini"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_built_in_book_prices_the_common_models_with_a_date_and_a_source() -> None:
    book = load_price_book()
    for model in COMMON_MODELS:
        price = book.price_of(model)
        assert price is not None, model
        assert price.currency == "USD"
        assert 0 < price.cached_input <= price.input < price.output
        assert isinstance(price.date, date)
        assert "https://" in price.source


def test_global_batch_is_half_the_global_standard_price() -> None:
    price = builtin_price_book().price_of("gpt-4o-mini")
    assert price is not None
    assert (price.input, price.cached_input, price.output) == (0.075, 0.0375, 0.30)  # of $0.15 / $0.075 / $0.60


@pytest.mark.parametrize(
    ("name", "entry"),
    [("gpt-4o-2024-08-06", "gpt-4o"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"), ("GPT-4o", "gpt-4o")],
)
def test_a_model_version_takes_its_models_entry(name: str, entry: str) -> None:
    book = builtin_price_book()
    assert book.price_of(name) == book.price_of(entry)


def test_a_model_without_a_sourced_price_is_not_in_the_book() -> None:
    assert builtin_price_book().price_of("davinci-002") is None


def test_a_price_file_overrides_and_extends_the_book(tmp_path: Path) -> None:
    path = write(
        tmp_path / "prices.toml",
        'currency = "EUR"\n'
        '[models."gpt-4o-mini"]\ninput = 1\noutput = 2\ndate = 2027-01-01\nsource = "our contract"\n'
        '[models."my-model"]\ninput = 0.5\ncached_input = 0.1\noutput = 1.5\ndate = "2027-01-02"\nsource = "x"\n',
    )
    book = load_price_book(path)

    mini = book.price_of("gpt-4o-mini-2024-07-18")
    assert mini is not None
    assert (mini.input, mini.cached_input, mini.output, mini.currency) == (1.0, 1.0, 2.0, "EUR")  # cached: as input
    assert mini.date == date(2027, 1, 1)
    mine = book.price_of("my-model")
    assert mine is not None
    assert (mine.cached_input, mine.date) == (0.1, date(2027, 1, 2))
    assert book.price_of("gpt-4o") == builtin_price_book().price_of("gpt-4o")
    assert "my-model" in book.models


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("not = [toml", ("not valid TOML",)),
        ('currency = "USD"\n', ("[models.NAME]",)),
        ("[models.x]\ninput = 1\noutput = 2\ndate = 2026-01-01\n", ("models.'x'", "source")),
        ('[models.x]\ninput = -1\noutput = 2\ndate = 2026-01-01\nsource = "s"\n', ("models.'x'", "input")),
        ('[models.x]\ninput = true\noutput = 2\ndate = 2026-01-01\nsource = "s"\n', ("models.'x'", "input")),
        ('[models.x]\ninput = 1\noutput = "2"\ndate = 2026-01-01\nsource = "s"\n', ("models.'x'", "output")),
        ('[models.x]\ninput = 1\noutput = 2\ndate = "soon"\nsource = "s"\n', ("models.'x'", "date")),
        ('[models.x]\ninput = 1\noutput = 2\ndate = 2026-01-01T10:00:00\nsource = "s"\n', ("models.'x'", "date")),
        ('[models.x]\ninput = 1\noutput = 2\ndate = 2026-01-01\nsource = "s"\ncurrency = ""\n', ("currency",)),
        ("[models]\nx = 3\n", ("models.'x'", "table")),
    ],
)
def test_a_wrong_price_file_is_refused_naming_the_file_and_the_entry(
    tmp_path: Path, text: str, names: tuple[str, ...]
) -> None:
    path = write(tmp_path / "prices.toml", text)
    with pytest.raises(BadPriceFile) as caught:
        load_price_book(path)
    assert caught.value.path == path
    assert caught.value.setting == "AOAI_BATCH_PRICES"
    assert str(path) in str(caught.value)
    for name in names:
        assert name in str(caught.value)


def test_a_missing_price_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(BadPriceFile) as caught:
        load_price_book(tmp_path / "nowhere.toml")
    assert caught.value.kind == "not_configured"
    assert "nowhere.toml" in str(caught.value)


def test_an_estimate_prices_the_input_and_bounds_the_output() -> None:
    estimate = estimate_cost("gpt-4o-mini", 2_000_000, 1_000_000)

    assert estimate.currency == "USD"
    assert estimate.input == pytest.approx(0.15)
    assert estimate.output_upper_bound == pytest.approx(0.30)
    assert estimate.total_upper_bound == pytest.approx(0.45)
    assert estimate.price_date is not None
    assert estimate.reason is None


def test_an_estimate_without_an_output_bound_says_so() -> None:
    estimate = estimate_cost("gpt-4o", 1_000_000, None)

    assert estimate.input == pytest.approx(1.25)
    assert (estimate.output_upper_bound, estimate.total_upper_bound) == (None, None)
    assert estimate.reason == NO_OUTPUT_BOUND


@pytest.mark.parametrize(("model", "in_reason"), [(None, "not known"), ("davinci-002", "no price for davinci-002")])
def test_an_estimate_of_an_unknown_model_or_price_is_null_with_a_reason(model: str | None, in_reason: str) -> None:
    estimate = estimate_cost(model, 1000, 10)

    assert (estimate.input, estimate.output_upper_bound, estimate.total_upper_bound, estimate.currency) == (
        None,
        None,
        None,
        None,
    )
    assert estimate.reason is not None
    assert in_reason in estimate.reason


def test_the_cost_of_usage_prices_cached_tokens_at_their_price() -> None:
    usage = ModelUsage(prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=100_000)

    cost = usage_cost("gpt-4o-2024-08-06", usage)

    assert cost.input == pytest.approx(0.6 * 1.25)
    assert cost.cached_input == pytest.approx(0.4 * 0.625)
    assert cost.output == pytest.approx(0.1 * 5.0)
    assert cost.total == pytest.approx(0.75 + 0.25 + 0.5)
    assert (cost.models, cost.input_tokens, cost.cached_tokens, cost.output_tokens) == (
        ["gpt-4o-2024-08-06"],
        1_000_000,
        400_000,
        100_000,
    )
    assert cost.currency == "USD"


def test_the_cost_of_several_models_adds_up_and_lines_without_a_model_take_the_fallback() -> None:
    by_model = {"gpt-4o-mini": ModelUsage(1_000_000, 0, 0), None: ModelUsage(1_000_000, 0, 0)}

    cost = usage_costs(by_model, fallback_model="gpt-4o")

    assert cost.total == pytest.approx(0.075 + 1.25)
    assert cost.models == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize(
    ("by_model", "in_reason"),
    [
        ({None: ModelUsage(10, 0, 10)}, "do not name their model"),
        ({"gpt-4o": ModelUsage(10, 0, 10), "mystery": ModelUsage(1, 0, 1)}, "no price for mystery"),
    ],
)
def test_a_cost_that_cannot_be_priced_is_null_with_a_reason(
    by_model: dict[str | None, ModelUsage], in_reason: str
) -> None:
    cost = usage_costs(by_model)

    assert (cost.input, cost.total) == (None, None)
    assert cost.reason is not None
    assert in_reason in cost.reason


def test_a_cost_in_two_currencies_has_no_single_currency(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.toml", '[models.euro]\ninput = 1\noutput = 1\ndate = 2027-01-01\nsource = "s"\ncurrency = "EUR"\n'
    )
    cost = usage_costs({"euro": ModelUsage(1, 0, 0), "gpt-4o": ModelUsage(1, 0, 0)}, book=load_price_book(path))
    assert cost.currency is None
    assert cost.reason is not None


def test_tallies_add_up() -> None:
    total = sum_usage([{"a": ModelUsage(1, 1, 1)}, {"a": ModelUsage(2, 0, 3), None: ModelUsage(5, 0, 0)}])
    assert total == {"a": ModelUsage(3, 1, 4), None: ModelUsage(5, 0, 0)}


def test_costs_add_up_over_the_batches_of_a_run() -> None:
    first = usage_cost("gpt-4o-mini", ModelUsage(1_000, 200, 500))
    second = usage_cost("gpt-4o", ModelUsage(3_000, 0, 100))

    total = sum_costs([first, second, usage_costs({})])  # a batch that returned no usage adds nothing

    assert (total.input_tokens, total.cached_tokens, total.output_tokens) == (4_000, 200, 600)
    assert total.models == ["gpt-4o", "gpt-4o-mini"]
    assert total.currency == "USD"
    assert total.total == pytest.approx((first.total or 0) + (second.total or 0), abs=1e-6)
    assert total.cached_input == pytest.approx(first.cached_input or 0, abs=1e-6)
    assert total.reason is None


def test_costs_with_an_unpriced_part_or_two_currencies_have_no_amounts() -> None:
    priced = usage_cost("gpt-4o-mini", ModelUsage(1_000, 0, 500))
    unpriced = usage_costs({None: ModelUsage(10, 0, 1)})
    euro = priced.model_copy(update={"currency": "EUR"})

    without = sum_costs([priced, unpriced])
    mixed = sum_costs([priced, euro])

    assert (without.total, without.reason) == (None, unpriced.reason)
    assert without.input_tokens == 1_010
    assert (mixed.total, mixed.currency) == (None, None)
    assert mixed.reason is not None
    assert sum_costs([]).total == 0


PRICING = Pricing(builtin_price_book(), {"batch-mini": ("gpt-4o-mini-2024-07-18", "setting")})


@pytest.mark.parametrize(
    ("pricing", "deployment", "model", "known_from", "noted"),
    [
        (PRICING, "batch-mini", "gpt-4o-mini-2024-07-18", "setting", False),
        (Pricing(builtin_price_book(), names_are_models=True), "gpt-4.1", "gpt-4.1", "provider", False),
        (PRICING, "gpt-4o", "gpt-4o", "deployment_name", True),
        (PRICING, "team-deployment", None, None, True),
        (PRICING, None, None, None, True),
    ],
)
def test_the_model_behind_a_deployment_is_known_or_said_to_be_guessed(
    pricing: Pricing, deployment: str | None, model: str | None, known_from: str | None, noted: bool
) -> None:
    found, source, note = pricing.model_of(deployment)
    assert (found, source, note is not None) == (model, known_from, noted)


def test_a_name_match_is_priced_and_says_it_was_guessed() -> None:
    estimate = PRICING.estimate("gpt-4o", 1000, 10)
    assert estimate.input is not None
    assert estimate.model_from == "deployment_name"
    assert estimate.reason is not None
    assert "AOAI_BATCH_DEPLOYMENT_MODELS" in estimate.reason


def test_an_unknown_deployment_names_the_setting_that_tells_its_model() -> None:
    estimate = PRICING.estimate("team-deployment", 1000, 10)
    assert estimate.input is None
    assert estimate.reason is not None
    assert "AOAI_BATCH_DEPLOYMENT_MODELS" in estimate.reason


def test_the_setting_wins_over_the_emulators_deployments(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, provider="emulator", deployment_models="gpt-4o=gpt-4.1,extra=gpt-5")
    pricing = pricing_for(settings)
    assert pricing.model_of("gpt-4o")[:2] == ("gpt-4.1", "setting")
    assert pricing.model_of("extra")[:2] == ("gpt-5", "setting")
    assert pricing.model_of("gpt-4o-mini")[:2] == ("gpt-4o-mini-2024-07-18", "emulator")


def test_on_azure_only_the_setting_tells_a_deployments_model(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, endpoint="https://res.openai.azure.com", api_key="k")
    pricing = pricing_for(settings)
    assert pricing.model_of("gpt-4o-mini")[1] == "deployment_name"
    assert pricing.model_of("my-batch")[0] is None


def test_the_price_file_setting_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "p.toml", '[models.mine]\ninput = 1\noutput = 1\ndate = 2027-01-01\nsource = "s"\n')
    settings = Settings(home=tmp_path, provider="openai", openai_api_key="k", prices=path)
    assert pricing_for(settings).estimate("mine", 1_000_000, None).input == 1.0


def report(deployment: str | None, tokens: int, bound: int | None, path: str = "a.jsonl") -> ValidationReport:
    return ValidationReport(
        ok=True, path=path, requests=1, deployment=deployment, estimated_input_tokens=tokens, max_output_tokens=bound
    )


def test_a_build_is_priced_per_file_and_as_a_whole() -> None:
    parts = [report("batch-mini", 1_000_000, 100, "a"), report("batch-mini", 1_000_000, 300, "b")]
    build = BuildResult(
        files=[BuiltFile(path=p.path, requests=1, bytes=1) for p in parts],
        requests=2,
        split=True,
        estimated_input_tokens=2_000_000,
        tokens_exact=True,
        validation=parts,
    )

    priced = PRICING.priced_build(build)

    assert [r.estimated_cost.input for r in priced.validation if r.estimated_cost] == [0.075, 0.075]
    assert priced.estimated_cost is not None
    assert priced.estimated_cost.input == pytest.approx(0.15)
    assert priced.estimated_cost.output_upper_bound == pytest.approx(400 * 0.30 / 1_000_000)


def test_a_build_with_a_file_of_unbounded_output_has_no_upper_bound() -> None:
    parts = [report("batch-mini", 10, 100, "a"), report("batch-mini", 10, None, "b")]
    build = BuildResult(
        files=[], requests=2, split=True, estimated_input_tokens=20, tokens_exact=True, validation=parts
    )
    priced = PRICING.priced_build(build)
    assert priced.estimated_cost is not None
    assert priced.estimated_cost.total_upper_bound is None


def test_a_cost_within_the_limit_passes() -> None:
    check_max_cost(estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000), 0.375)


@pytest.mark.parametrize(
    ("model", "bound", "max_cost", "estimate"),
    [("gpt-4o-mini", 1_000_000, 0.3, 0.375), ("gpt-4o-mini", None, 0.05, 0.075), ("unpriced", 1, 100.0, None)],
)
def test_a_cost_above_the_limit_or_unknown_is_refused_with_the_estimate(
    model: str, bound: int | None, max_cost: float, estimate: float | None
) -> None:
    with pytest.raises(CostAboveLimit) as caught:
        check_max_cost(estimate_cost(model, 1_000_000, bound), max_cost)
    assert caught.value.kind == "over_budget"
    assert caught.value.max_cost == max_cost
    assert caught.value.estimate == (pytest.approx(estimate) if estimate is not None else None)
    if estimate is not None:
        assert f"{estimate:g}" in str(caught.value)


def test_an_unbounded_output_is_checked_on_its_input_cost() -> None:
    check_max_cost(estimate_cost("gpt-4o-mini", 1_000_000, None), 0.1)


def test_an_estimate_is_described_in_one_line() -> None:
    assert describe_estimate(estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000)).startswith("up to USD 0.375 (")
    assert "no known bound" in describe_estimate(estimate_cost("gpt-4o-mini", 1_000_000, None))
    assert describe_estimate(estimate_cost(None, 1, 1)).startswith("unknown (")


def test_a_price_book_of_nothing_prices_nothing() -> None:
    assert PriceBook({}).price_of("gpt-4o") is None
