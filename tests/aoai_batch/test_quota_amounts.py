"""Enqueued-token amounts: read as people write them, written as Azure does, and read back from Azure's message."""

from __future__ import annotations

import pytest

from aoai_batch.quota import limit_named_in, parse_token_amount, parse_token_limits, token_amount


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("1000", 1000),
        ("1,000,000", 1_000_000),
        ("30K", 30_000),
        ("30k", 30_000),
        ("1.5M", 1_500_000),
        ("2 M", 2_000_000),
        ("15B", 15_000_000_000),
        ("0", 0),
    ],
)
def test_amounts_are_read_with_suffixes_and_thousands_separators(text: str, tokens: int) -> None:
    assert parse_token_amount(text) == tokens


@pytest.mark.parametrize("text", ["", "lots", "-3", "1,00", "1e3", "1.5", "1.0001K", "M"])
def test_what_is_not_a_whole_token_count_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="token"):
        parse_token_amount(text)


def test_limits_are_name_equals_tokens_separated_by_commas() -> None:
    limits = parse_token_limits(" gpt-4o-mini=1M, gpt-4o=200000000 ,")
    assert limits == {"gpt-4o-mini": 1_000_000, "gpt-4o": 200_000_000}
    assert parse_token_limits("") == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [("gpt-4o", "name=tokens"), ("=5", "name=tokens"), ("a=", "name=tokens"), ("a=1,a=2", "twice"), ("a=0", "0")],
)
def test_a_bad_limit_list_names_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_token_limits(text)


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (999, "999"),
        (30_000, "30K"),
        (30_500, "30.5K"),
        (1_500_000, "1.5M"),
        (200_000_000, "200M"),
        (1_234_567, "1,234,567"),
    ],
)
def test_amounts_are_written_short_only_when_exact(tokens: int, text: str) -> None:
    assert token_amount(tokens) == text
    assert parse_token_amount(text) == tokens


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ("Enqueued token limit reached for deployment x: the configured limit of 30K would be passed", 30_000),
        ("Enqueued token limit reached. Current limit: 1,000,000.", 1_000_000),
        ("over the limit of 2.5B enqueued tokens", 2_500_000_000),
        ("a limit of 2.5 tokens is no whole number", None),
        ("The number of enqueued tokens has surpassed the configured limit for the deployment 'x'.", None),
    ],
)
def test_the_limit_a_message_names_is_found(message: str, limit: int | None) -> None:
    assert limit_named_in(message) == limit
