"""Paging of list answers as Azure and OpenAI page them: `limit`, the `after` cursor, the order.

Files: `limit` 1-10,000 (default 10,000) and `order` `asc`/`desc` by `created_at` (default `desc`), as
OpenAI documents them and Azure's 2025-04-01-preview spec lists them. Batches: `limit` 1-100 (default 20),
newest first unless `$orderby` (see `odata.py`) says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aoai_batch.emulator.api_errors import invalid

FILES_DEFAULT_LIMIT = FILES_MAX_LIMIT = 10_000
BATCHES_DEFAULT_LIMIT = 20
BATCHES_MAX_LIMIT = 100
ORDERS = ("asc", "desc")


class Listed(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> float: ...


R = TypeVar("R", bound=Listed)


@dataclass(frozen=True)
class Page:
    """What a list request asks for: at most `limit` items after the item `after`."""

    limit: int
    after: str | None

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, default_limit: int, max_limit: int) -> Page:
        raw = query.get("limit")
        limit = default_limit
        if raw is not None:
            if not raw.isdigit() or not 1 <= int(raw) <= max_limit:
                raise invalid(f"limit must be a whole number from 1 to {max_limit}.", "limit")
            limit = int(raw)
        return cls(limit, query.get("after") or None)

    def take(self, records: Sequence[R]) -> tuple[list[R], bool]:
        """The page of `records` (already in order), and whether more follow it."""
        if self.after is not None:
            ids = [r.id for r in records]
            records = records[ids.index(self.after) + 1 :] if self.after in ids else []
        return list(records[: self.limit]), len(records) > self.limit


def file_order(query: Mapping[str, str]) -> bool:
    """Whether files are listed newest first (`order=desc`, the default)."""
    order = query.get("order", "desc")
    if order not in ORDERS:
        raise invalid("order must be asc or desc.", "order")
    return order == "desc"


def by_created_at(records: Sequence[R], *, descending: bool) -> list[R]:
    """`records` (newest first as stored) sorted by `created_at`; ties keep the order they were made in."""
    oldest_first = sorted(reversed(records), key=lambda r: r.created_at)
    return oldest_first[::-1] if descending else oldest_first
