"""The enqueued tokens in flight per deployment, against each deployment's limit.

What is in flight is never kept as a running sum: it is read from the shard rows (those in `creating` or
`submitted`, over every run of this home), so a crash cannot make it drift. A limit comes from, in this order:
one learned from a `token_limit_exceeded` message when it is the smaller, the pool file's entry,
`AOAI_BATCH_ENQUEUED_TOKENS`, else none: then at most one shard is in flight on that deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aoai_batch.runs.models import DeploymentLoad, LimitSource
from aoai_batch.runs.records import LearnedLimit, ShardRecord


def tokens_text(tokens: int) -> str:
    """A token count as people say it: 950, 30K, 0.9M, 1.2B."""
    for unit, size in (("B", 1_000_000_000), ("M", 1_000_000), ("K", 1_000)):
        if tokens >= size * 0.1 and (unit != "K" or tokens >= size):
            value = tokens / size
            digits = 2 if value < 1 else 1 if value < 10 else 0
            text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
            return f"{text}{unit}"
    return str(tokens)


@dataclass(frozen=True, slots=True)
class Limit:
    tokens: int | None
    source: LimitSource | None


def effective_limit(configured: int | None, source: LimitSource | None, learned: LearnedLimit | None) -> Limit:
    """A learned limit wins when it is the smaller (the service said so); else the configured one, if any."""
    if learned is not None and (configured is None or learned.limit < configured):
        return Limit(learned.limit, "learned")
    if configured is not None:
        return Limit(configured, source)
    return Limit(None, None)


@dataclass
class Ledger:
    """One step's view of the quota: tokens and shards in flight per deployment, and the limits."""

    limits: Mapping[str, Limit]
    in_flight: dict[str, tuple[int, int]] = field(default_factory=dict)  # deployment -> (tokens, shards)

    def limit(self, deployment: str) -> Limit:
        return self.limits.get(deployment, Limit(None, None))

    def fits(self, deployment: str, tokens: int) -> bool:
        """Whether a shard of `tokens` may be submitted to `deployment` now."""
        used, shards = self.in_flight.get(deployment, (0, 0))
        limit = self.limit(deployment).tokens
        if limit is None:
            return shards == 0
        return used + tokens <= limit

    def can_ever_fit(self, deployment: str, tokens: int) -> bool:
        limit = self.limit(deployment).tokens
        return limit is None or tokens <= limit

    def add(self, deployment: str, tokens: int) -> None:
        """Count a shard just sent (the rows say so too; this keeps the step's view up to date)."""
        used, shards = self.in_flight.get(deployment, (0, 0))
        self.in_flight[deployment] = (used + tokens, shards + 1)

    def load(self, deployment: str) -> DeploymentLoad:
        used, shards = self.in_flight.get(deployment, (0, 0))
        limit = self.limit(deployment)
        return DeploymentLoad(
            deployment=deployment,
            in_flight_tokens=used,
            limit=limit.tokens,
            limit_source=limit.source,
            shards_in_flight=shards,
        )


def smallest_known_limit(ledger: Ledger, deployments: Sequence[str]) -> int | None:
    """What bounds a planned shard's tokens: the smallest limit known among the run's deployments."""
    known = [limit for name in deployments if (limit := ledger.limit(name).tokens) is not None]
    return min(known) if known else None


def waiting_for(shards: Sequence[ShardRecord], ledger: Ledger, deployments: Sequence[str], *, now: float) -> str | None:
    """What the run waits for, in one sentence; None when nothing waits (or only for batches to finish)."""
    queued = [shard for shard in shards if shard.state == "queued"]
    if not queued:
        return None
    later = [shard for shard in queued if shard.next_try_at is not None and shard.next_try_at > now]
    retry = None
    if later:
        first = min(later, key=lambda shard: shard.next_try_at or 0.0)
        when = datetime.fromtimestamp(first.next_try_at or 0.0, tz=UTC).strftime("%H:%M")
        cause = (first.error or "token_limit_exceeded").split(":")[0]
        others = f" (and {len(later) - 1} more)" if len(later) > 1 else ""
        retry = f"shard {first.index} retries at {when} UTC after {cause}{others}"
        if len(later) == len(queued):
            return retry
    count = f"{len(queued)} shard{'s' if len(queued) != 1 else ''} queued"
    loads = "; ".join(_load_text(ledger.load(name)) for name in deployments)
    return f"{count}: {loads}" + (f"; {retry}" if retry else "")


def _load_text(load: DeploymentLoad) -> str:
    if load.limit is None:
        shards = f"{load.shards_in_flight} shard{'s' if load.shards_in_flight != 1 else ''}"
        return f"{load.deployment} has {shards} in flight (limit unknown: one at a time)"
    used, limit = tokens_text(load.in_flight_tokens), tokens_text(load.limit)
    return f"{load.deployment} has {used} of {limit} enqueued tokens in flight"
