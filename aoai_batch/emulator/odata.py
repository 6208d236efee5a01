"""The `$filter` and `$orderby` of `GET /openai/batches`: the small OData subset Azure documents, strictly.

Azure's batch docs (the seeds) give the whole grammar: `created_at gt N`, `created_at lt N` and
`status eq 'Completed'`, joined by `and`; `$orderby=created_at asc|desc`. Anything else is a 400 naming
what is supported, never a filter quietly ignored. Statuses are written as Azure writes them in the docs
(`'Completed'`, `'InProgress'`) or as the standard wire does (`'completed'`, `'in_progress'`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from aoai_batch.emulator.api_errors import ApiError, invalid
from aoai_batch.emulator.records import EmulatedBatch
from aoai_batch.models import BatchStatus

# Azure documents $filter with api-version 2024-10-01-preview (the seeds' REST and Python samples) and
# lists it in the 2025-03-01-preview spec and later; older dated versions refuse it rather than ignore it.
FIRST_VERSION = "2024-10-01"
FILTER_HELP = (
    "Use created_at gt N, created_at lt N (epoch seconds) and status eq 'Completed', joined by and; "
    "e.g. created_at gt 1728773533 and status eq 'Completed'."
)
ORDERBY_HELP = "Use $orderby=created_at asc or $orderby=created_at desc."
TOKEN = re.compile(r"(?P<string>'[A-Za-z_]*')|(?P<number>-?\d+)|(?P<word>[a-z_]+)")


def _pascal(status: str) -> str:
    return "".join(part.capitalize() for part in status.split("_"))


STATUSES: dict[str, BatchStatus] = {
    **{_pascal(status): status for status in get_args(BatchStatus)},
    **{status: status for status in get_args(BatchStatus)},
}


@dataclass(frozen=True)
class CreatedAt:
    """`created_at gt N` or `created_at lt N` (epoch seconds, as the batch shows them)."""

    op: str
    seconds: int

    def __call__(self, record: EmulatedBatch) -> bool:
        created = int(record.created_at)
        return created > self.seconds if self.op == "gt" else created < self.seconds


@dataclass(frozen=True)
class StatusIs:
    """`status eq 'Completed'`."""

    status: BatchStatus

    def __call__(self, record: EmulatedBatch) -> bool:
        return record.status == self.status


Clause = CreatedAt | StatusIs


def batch_query(query: Mapping[str, str]) -> tuple[list[Clause], bool]:
    """The filter clauses and whether newest come first, from a list request's query parameters."""
    filter_text, orderby_text = query.get("$filter"), query.get("$orderby")
    if (filter_text is not None or orderby_text is not None) and not version_allows(query.get("api-version")):
        raise invalid(
            f"$filter and $orderby need api-version {FIRST_VERSION}-preview or later (e.g. 2024-10-21).", "api-version"
        )
    clauses = parse_filter(filter_text) if filter_text is not None else []
    descending = parse_orderby(orderby_text) if orderby_text is not None else True
    return clauses, descending


def parse_filter(text: str) -> list[Clause]:
    """The clauses of a `$filter` expression (all must hold), or a 400 saying what is supported."""
    tokens = _tokens(text)
    clauses: list[Clause] = []
    while True:
        clauses.append(_clause(tokens[:3], text))
        tokens = tokens[3:]
        if not tokens:
            return clauses
        if tokens[0] != ("word", "and") or len(tokens) == 1:
            raise _bad_filter(text)
        tokens = tokens[1:]


def parse_orderby(text: str) -> bool:
    """Whether `$orderby` asks for newest first (`created_at desc`); `created_at` alone is ascending."""
    words = text.split()
    if words[:1] == ["created_at"] and words[1:] in ([], ["asc"], ["desc"]):
        return words[1:] == ["desc"]
    raise invalid(f"Unsupported $orderby {text!r}. {ORDERBY_HELP}", "$orderby")


def version_allows(version: str | None) -> bool:
    """Whether a dated Azure api-version has `$filter`/`$orderby` (undated ones such as `v1` do)."""
    if version is None or not version[:4].isdigit():
        return True
    return version[:10] >= FIRST_VERSION


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) of each space-separated token: a quoted status, a whole number or a lower-case word."""
    tokens: list[tuple[str, str]] = []
    for part in text.split():
        match = TOKEN.fullmatch(part)
        if match is None or match.lastgroup is None:
            raise _bad_filter(text)
        tokens.append((match.lastgroup, part))
    return tokens


def _clause(tokens: list[tuple[str, str]], text: str) -> Clause:
    match tokens:
        case [("word", "created_at"), ("word", "gt" | "lt" as op), ("number", number)]:
            return CreatedAt(op, int(number))
        case [("word", "status"), ("word", "eq"), ("string", quoted)]:
            value = quoted[1:-1]
            if value not in STATUSES:
                names = ", ".join(s for s in STATUSES if s[0].isupper())
                raise invalid(f"Unknown status {value!r} in $filter; use one of {names}.", "$filter")
            return StatusIs(STATUSES[value])
    raise _bad_filter(text)


def _bad_filter(text: str) -> ApiError:
    return invalid(f"Unsupported $filter {text!r}. {FILTER_HELP}", "$filter")
