"""The two small helpers every layer shares: cutting text short, and an endpoint without OpenAI's `/v1`."""

from __future__ import annotations

import pytest

from aoai_batch.endpoints import bare_endpoint
from aoai_batch.text import truncate


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        (None, 5, None),
        ("", 5, ""),
        ("hello", 5, "hello"),
        ("hello!", 5, "hell…"),
        ("hello", 1, "…"),
        ("hello", 0, "…"),
    ],
)
def test_truncate_keeps_text_within_the_limit_and_says_it_was_cut(
    text: str | None, limit: int, expected: str | None
) -> None:
    assert truncate(text, limit) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/v1/chat/completions", "/chat/completions"),
        ("/chat/completions", "/chat/completions"),
        ("/v1", "/v1"),
        ("/v1responses", "/v1responses"),
        ("/openai/v1/responses", "/openai/v1/responses"),
    ],
)
def test_bare_endpoint_takes_off_only_a_leading_v1_segment(url: str, expected: str) -> None:
    assert bare_endpoint(url) == expected
