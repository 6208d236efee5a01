"""What a batch costs (SPEC §11): the dated price book, the model behind a deployment, the estimate before a
batch runs and the cost from the usage its output lines report.

The built-in price book is `prices.toml` beside this module: Global Batch prices per 1M input, cached input
and output tokens, each with the date and source it was read from. `AOAI_BATCH_PRICES` names a file of the
same form whose entries override or extend it. A model version (`gpt-4o-2024-08-06`) takes the entry of its
name (`gpt-4o`) unless it has its own.

The model behind a deployment is known from AOAI_BATCH_DEPLOYMENT_MODELS, from the embedded emulator's
deployments, or on the OpenAI provider from the name itself (a "deployment" there is a model); after a batch
has run, from the `model` of its output lines. A deployment named like a priced model is taken for that
model only with a `reason` saying so; any other name is an unknown model, and the estimate says why.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from aoai_batch.errors import BadPriceFile, CostAboveLimit
from aoai_batch.models import BuildResult, Cost, EstimatedCost, ModelFrom, ValidationReport
from aoai_batch.settings import EmulatorSettings, Settings

PRICES_SETTING = "AOAI_BATCH_PRICES"
MODELS_SETTING = "AOAI_BATCH_DEPLOYMENT_MODELS"
BUILTIN_PRICES = "prices.toml"
DEFAULT_CURRENCY = "USD"
PER_TOKENS = 1_000_000
CENT_DIGITS = 6  # amounts rounded to a millionth of the currency: small batches still show a cost
VERSION_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
NO_OUTPUT_BOUND = (
    "The output has no upper bound: not every request sets max_tokens (or max_completion_tokens, max_output_tokens)."
)


@dataclass(frozen=True, slots=True)
class Price:
    """One model's Global Batch prices, per 1M tokens, as read on `date` from `source`."""

    model: str
    input: float
    cached_input: float
    output: float
    currency: str
    date: date
    source: str


class PriceBook:
    """Prices by model name (case does not matter; a dated version falls back to its model's entry)."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = {name.lower(): price for name, price in prices.items()}

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    def price_of(self, model: str) -> Price | None:
        name = model.strip().lower()
        return self._prices.get(name) or self._prices.get(VERSION_SUFFIX.sub("", name))


def load_price_book(override: Path | None = None) -> PriceBook:
    """The built-in price book, with the entries of `override` (the file AOAI_BATCH_PRICES names) on top.

    Raises BadPriceFile naming the file (and the entry) when it cannot be read or an entry is wrong.
    """
    builtin = resources.files("aoai_batch").joinpath(BUILTIN_PRICES)
    prices = _entries(tomllib.loads(builtin.read_text(encoding="utf-8")), Path(str(builtin)))
    if override is not None:
        prices.update(_entries(_read_toml(override), override))
    return PriceBook(prices)


@functools.cache
def builtin_price_book() -> PriceBook:
    return load_price_book()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise BadPriceFile(f"The price file {path} cannot be read ({why}).", path=path) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadPriceFile(f"The price file {path} is not valid TOML ({exc}).", path=path) from exc


def _entries(data: dict[str, Any], path: Path) -> dict[str, Price]:
    models = data.get("models")
    if not isinstance(models, dict):
        raise BadPriceFile(f"The price file {path} has no [models.NAME] tables.", path=path)
    currency = data.get("currency", DEFAULT_CURRENCY)
    prices: dict[str, Price] = {}
    for name, entry in models.items():
        try:
            prices[name] = _price(name, entry, currency)
        except ValueError as exc:
            raise BadPriceFile(f"The price file {path}, entry models.{name!r}: {exc}", path=path) from exc
    return prices


def _price(name: str, entry: object, currency: object) -> Price:
    if not isinstance(entry, dict):
        raise ValueError("must be a table of input, cached_input, output, date and source.")
    currency = entry.get("currency", currency)
    if not isinstance(currency, str) or not currency:
        raise ValueError("currency must be a name such as USD.")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValueError("source must say where the price was read.")
    input_price = _amount(entry, "input")
    cached = _amount(entry, "cached_input") if "cached_input" in entry else input_price
    return Price(
        model=name,
        input=input_price,
        cached_input=cached,
        output=_amount(entry, "output"),
        currency=currency,
        date=_date(entry.get("date")),
        source=source.strip(),
    )


def _amount(entry: dict[str, Any], key: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ValueError(f"{key} must be a price per 1M tokens, a number of 0 or more (it is {value!r}).")
    return float(value)


def _date(value: object) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"date must be the day the price was read, e.g. 2026-12-02 (it is {value!r}).")


# before: estimates


def _money(tokens: int, per_million: float) -> float:
    return round(tokens * per_million / PER_TOKENS, CENT_DIGITS)


def estimate_cost(
    model: str | None,
    input_tokens: int,
    output_tokens_bound: int | None,
    *,
    book: PriceBook | None = None,
    model_from: ModelFrom | None = None,
    note: str | None = None,
) -> EstimatedCost:
    """The input cost of `input_tokens` and, when `output_tokens_bound` is known, the most the output can cost.

    Amounts are null, and `reason` says why, when the model or its price is unknown; `note` (how the model
    was found) goes first in `reason`.
    """
    book = book or builtin_price_book()
    unpriced = EstimatedCost(model=model, model_from=model_from)
    if model is None:
        return unpriced.model_copy(update={"reason": note or "The model behind the deployment is not known."})
    price = book.price_of(model)
    if price is None:
        why = f"The price book has no price for {model}; add one in a file {PRICES_SETTING} names."
        return unpriced.model_copy(update={"reason": _sentences(note, why)})
    input_cost = _money(input_tokens, price.input)
    output = _money(output_tokens_bound, price.output) if output_tokens_bound is not None else None
    return unpriced.model_copy(
        update={
            "currency": price.currency,
            "input": input_cost,
            "output_upper_bound": output,
            "total_upper_bound": round(input_cost + output, CENT_DIGITS) if output is not None else None,
            "price_date": price.date,
            "reason": _sentences(note, NO_OUTPUT_BOUND if output is None else None),
        }
    )


def _sentences(*parts: str | None) -> str | None:
    return " ".join(part for part in parts if part) or None


def check_max_cost(estimate: EstimatedCost, max_cost: float) -> None:
    """Refuse (CostAboveLimit, with the estimate) a job whose estimate is above `max_cost`, or cannot be made.

    The estimate compared is its upper bound when every request caps its output, else its input cost (the
    output's share is then unknown, and the message says so).
    """
    if estimate.input is None:
        raise CostAboveLimit(
            f"A cost limit of {max_cost:g} was given, but the cost cannot be estimated: {estimate.reason}",
            max_cost=max_cost,
            estimate=None,
        )
    amount = estimate.total_upper_bound if estimate.total_upper_bound is not None else estimate.input
    if amount <= max_cost:
        return
    raise CostAboveLimit(
        f"The batch would cost {describe_estimate(estimate)}, above the limit of {max_cost:g}; nothing was started.",
        max_cost=max_cost,
        estimate=amount,
    )


def describe_estimate(estimate: EstimatedCost) -> str:
    """`up to USD 1.234 (input 0.2, output at most 1.0; gpt-4o prices of 2026-12-02)`, or why there is none."""
    if estimate.input is None:
        return f"unknown ({estimate.reason})"
    currency = estimate.currency or DEFAULT_CURRENCY
    prices = f"{estimate.model} prices of {estimate.price_date}"
    if estimate.total_upper_bound is None:
        return f"{currency} {estimate.input:g} for the input, plus output of no known bound ({prices})"
    parts = f"input {estimate.input:g}, output at most {estimate.output_upper_bound:g}"
    return f"up to {currency} {estimate.total_upper_bound:g} ({parts}; {prices})"


# after: the cost of the usage returned


@dataclass(slots=True)
class ModelUsage:
    """The tokens one model's answers report: prompt (of which cached) and completion."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: ModelUsage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens


def usage_cost(model: str, usage: ModelUsage, *, book: PriceBook | None = None) -> Cost:
    """What `usage` of `model` cost: uncached input, cached input (at its price) and output."""
    return usage_costs({model: usage}, book=book)


def usage_costs(
    by_model: Mapping[str | None, ModelUsage], *, book: PriceBook | None = None, fallback_model: str | None = None
) -> Cost:
    """The cost of each model's usage, added up; a usage without a model (None) is priced as `fallback_model`.

    The amounts are null, and `reason` says why, when a model has no price (or none is known).
    """
    book = book or builtin_price_book()
    merged: dict[str | None, ModelUsage] = {}
    for model, usage in by_model.items():
        merged.setdefault(model or fallback_model, ModelUsage()).add(usage)
    total = ModelUsage()
    for usage in merged.values():
        total.add(usage)
    cost = Cost(
        models=sorted(model for model in merged if model),
        input_tokens=total.prompt_tokens,
        cached_tokens=total.cached_tokens,
        output_tokens=total.completion_tokens,
    )
    if None in merged:
        return cost.model_copy(update={"reason": "The output lines do not name their model, nor is it known."})
    prices = {model: book.price_of(model) for model in merged if model}
    missing = sorted(model for model, price in prices.items() if price is None)
    if missing:
        why = f"The price book has no price for {', '.join(missing)}; add one in a file {PRICES_SETTING} names."
        return cost.model_copy(update={"reason": why})
    return _priced(cost, merged, {model: price for model, price in prices.items() if price is not None})


def _priced(cost: Cost, merged: Mapping[str | None, ModelUsage], prices: Mapping[str, Price]) -> Cost:
    uncached = cached = output = 0.0
    for model, usage in merged.items():
        price = prices[model or ""]
        uncached += _money(max(usage.prompt_tokens - usage.cached_tokens, 0), price.input)
        cached += _money(usage.cached_tokens, price.cached_input)
        output += _money(usage.completion_tokens, price.output)
    currencies = {price.currency for price in prices.values()}
    return cost.model_copy(
        update={
            "currency": currencies.pop() if len(currencies) == 1 else None,
            "input": round(uncached, CENT_DIGITS),
            "cached_input": round(cached, CENT_DIGITS),
            "output": round(output, CENT_DIGITS),
            "total": round(uncached + cached + output, CENT_DIGITS),
            "price_date": min((price.date for price in prices.values()), default=None),
            "reason": "The models' prices are in different currencies." if len(currencies) > 1 else None,
        }
    )


# the service's view: the price book and the deployments' models


@dataclass(frozen=True)
class Pricing:
    """The price book and what is known of the model behind each deployment (`pricing_for(settings)`)."""

    book: PriceBook
    deployments: Mapping[str, tuple[str, ModelFrom]] = field(default_factory=dict)
    names_are_models: bool = False  # the OpenAI provider: a batch's "deployment" is a model name

    def model_of(self, deployment: str | None) -> tuple[str | None, ModelFrom | None, str | None]:
        """(the model, how it is known, a note when it was guessed or cannot be known)."""
        if deployment is None:
            return None, None, "The file names no deployment (body.model), so its model is not known."
        known = self.deployments.get(deployment)
        if known is not None:
            return known[0], known[1], None
        if self.names_are_models:
            return deployment, "provider", None
        if self.book.price_of(deployment) is not None:
            note = (
                f"The model was taken from the deployment's name {deployment!r}; "
                f"set {MODELS_SETTING} (name=model,...) to say which model it runs."
            )
            return deployment, "deployment_name", note
        note = f"The model behind deployment {deployment!r} is not known: set {MODELS_SETTING} (name=model,...)."
        return None, None, note

    def estimate(self, deployment: str | None, input_tokens: int, output_tokens_bound: int | None) -> EstimatedCost:
        model, known_from, note = self.model_of(deployment)
        return estimate_cost(model, input_tokens, output_tokens_bound, book=self.book, model_from=known_from, note=note)

    def estimate_run(
        self, deployments: Sequence[str], input_tokens: int, output_tokens_bound: int | None
    ) -> EstimatedCost:
        """A run's estimate, at the price of its first deployment's model (the one it prefers); `reason` says so
        when its deployments run different models."""
        estimate = self.estimate(deployments[0] if deployments else None, input_tokens, output_tokens_bound)
        models = {self.model_of(name)[0] for name in deployments}
        if len(models) < 2:
            return estimate
        note = f"Priced as the first deployment's model; the run's deployments run {_listed(models)}."
        return estimate.model_copy(update={"reason": _sentences(estimate.reason, note)})

    def priced_report(self, report: ValidationReport) -> ValidationReport:
        """The report with its `estimated_cost`."""
        estimate = self.estimate(report.deployment, report.estimated_input_tokens, report.max_output_tokens)
        return report.model_copy(update={"estimated_cost": estimate})

    def priced_build(self, result: BuildResult) -> BuildResult:
        """The build with each file's estimate and the whole build's."""
        reports = [self.priced_report(report) for report in result.validation]
        bounds = [report.max_output_tokens for report in reports]
        bound = None if None in bounds else sum(b for b in bounds if b is not None)
        deployment = reports[0].deployment if reports else None
        total = self.estimate(deployment, result.estimated_input_tokens, bound)
        return result.model_copy(update={"validation": reports, "estimated_cost": total})

    def usage_cost(self, by_model: Mapping[str | None, ModelUsage], deployment: str | None = None) -> Cost:
        """The cost of what the output lines report; lines without a model are priced as the deployment's."""
        fallback = self.model_of(deployment)[0] if deployment else None
        return usage_costs(by_model, book=self.book, fallback_model=fallback)


def pricing_for(settings: Settings) -> Pricing:
    """The price book (with AOAI_BATCH_PRICES on top) and the deployments' models the settings make known.

    AOAI_BATCH_DEPLOYMENT_MODELS wins over the embedded emulator's own deployments. Raises BadPriceFile.
    """
    deployments: dict[str, tuple[str, ModelFrom]] = {}
    if settings.embedded_emulator:
        emulated = EmulatorSettings(home=settings.emulator_home).deployment_models
        deployments.update((name, (model, "emulator")) for name, model in emulated.items())
    deployments.update((name, (model, "setting")) for name, model in settings.deployment_models.items())
    return Pricing(load_price_book(settings.prices_path), deployments, names_are_models=settings.provider == "openai")


def _listed(models: Iterable[str | None]) -> str:
    return ", ".join(sorted(model or "an unknown model" for model in models))


def sum_costs(costs: Iterable[Cost]) -> Cost:
    """Several costs (one per batch of a run) as one: tokens and amounts added; the amounts are null, with the
    first reason, when one part's are (or the parts are in different currencies)."""
    parts = list(costs)
    total = Cost(
        models=sorted({model for part in parts for model in part.models}),
        input_tokens=sum(part.input_tokens for part in parts),
        cached_tokens=sum(part.cached_tokens for part in parts),
        output_tokens=sum(part.output_tokens for part in parts),
    )
    unpriced = next((part for part in parts if part.total is None), None)
    if unpriced is not None:
        return total.model_copy(update={"reason": unpriced.reason or "A batch of the run has no cost."})
    currencies = {part.currency for part in parts if part.currency is not None}
    if len(currencies) > 1:
        return total.model_copy(update={"reason": "The models' prices are in different currencies."})

    def added(name: str) -> float:
        return round(sum(getattr(part, name) or 0.0 for part in parts), CENT_DIGITS)

    dates = [part.price_date for part in parts if part.price_date is not None]
    return total.model_copy(
        update={
            "currency": currencies.pop() if currencies else None,
            "input": added("input"),
            "cached_input": added("cached_input"),
            "output": added("output"),
            "total": added("total"),
            "price_date": min(dates, default=None),
        }
    )


def sum_usage(parts: Iterable[Mapping[str | None, ModelUsage]]) -> dict[str | None, ModelUsage]:
    """Several tallies (one per output file) as one."""
    total: dict[str | None, ModelUsage] = {}
    for part in parts:
        for model, usage in part.items():
            total.setdefault(model, ModelUsage()).add(usage)
    return total
