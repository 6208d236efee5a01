"""The ledger's pure parts: limits read from service messages, their precedence, the fit, the sentence."""

from __future__ import annotations

import pytest

from aoai_batch.runs.ledger import Ledger, Limit, effective_limit, tokens_text, waiting_for
from aoai_batch.runs.records import LearnedLimit, ShardRecord

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("tokens", "text"),
    [(950, "950"), (30_000, "30K"), (900_000, "0.9M"), (1_000_000, "1M"), (150_000, "0.15M"), (2_500_000_000, "2.5B")],
)
def test_token_counts_read_as_people_say_them(tokens: int, text: str) -> None:
    assert tokens_text(tokens) == text


def learned(limit: int) -> LearnedLimit:
    return LearnedLimit("d", limit, "configured limit", NOW)


def test_a_learned_limit_wins_only_when_it_is_the_smaller() -> None:
    assert effective_limit(1000, "settings", learned(500)) == Limit(500, "learned")
    assert effective_limit(1000, "pool", learned(5000)) == Limit(1000, "pool")
    assert effective_limit(None, None, learned(5000)) == Limit(5000, "learned")
    assert effective_limit(1000, "settings", None) == Limit(1000, "settings")
    assert effective_limit(None, None, None) == Limit(None, None)


def test_a_known_limit_bounds_the_tokens_an_unknown_one_the_shards() -> None:
    ledger = Ledger({"known": Limit(100, "settings")}, {"known": (60, 1), "unknown": (5, 1)})
    assert ledger.fits("known", 40)
    assert not ledger.fits("known", 41)
    assert not ledger.fits("unknown", 1)  # one shard in flight already
    assert ledger.fits("idle", 10**9)  # unknown and idle: one shard may go
    assert not ledger.can_ever_fit("known", 101)
    assert ledger.can_ever_fit("idle", 10**9)
    ledger.add("idle", 7)
    assert ledger.load("idle").shards_in_flight == 1
    assert not ledger.fits("idle", 1)


def shard(index: int, **fields: object) -> ShardRecord:
    return ShardRecord("run_x", index, "input", 0, 10, 0, 100, 50, **fields)  # type: ignore[arg-type]


def test_what_a_run_waits_for_is_one_sentence() -> None:
    ledger = Ledger({"gpt-4o-mini": Limit(1_000_000, "settings")}, {"gpt-4o-mini": (900_000, 3)})
    queued = [shard(n) for n in range(3)]
    assert (
        waiting_for(queued, ledger, ["gpt-4o-mini"], now=NOW)
        == "3 shards queued: gpt-4o-mini has 0.9M of 1M enqueued tokens in flight"
    )
    unknown = Ledger({}, {"gpt-4o": (10, 1)})
    assert (
        waiting_for(queued[:1], unknown, ["gpt-4o"], now=NOW)
        == "1 shard queued: gpt-4o has 1 shard in flight (limit unknown: one at a time)"
    )
    backing_off = [shard(4, next_try_at=NOW + 600, error="token_limit_exceeded: limit of 30K")]
    assert waiting_for(backing_off, ledger, ["gpt-4o-mini"], now=NOW) == (
        "shard 4 retries at 15:16 UTC after token_limit_exceeded"
    )
    assert waiting_for([*backing_off, shard(5)], ledger, ["gpt-4o-mini"], now=NOW) == (
        "2 shards queued: gpt-4o-mini has 0.9M of 1M enqueued tokens in flight; "
        "shard 4 retries at 15:16 UTC after token_limit_exceeded"
    )
    assert waiting_for([shard(0, state="submitted")], ledger, ["gpt-4o-mini"], now=NOW) is None
