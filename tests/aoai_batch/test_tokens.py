"""Token estimates: exact with the bundled o200k_base, approximate (and saying so) otherwise or when sampled."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_batch.tokens import (
    TOKENS_PER_IMAGE,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REPLY,
    TokenCounter,
    TokenEstimator,
    count_request_tokens,
    get_counter,
    request_text,
)


def test_the_bundled_encoding_counts_exactly_without_a_download() -> None:
    counter = get_counter()

    assert counter.exact
    assert counter.encoding == "o200k_base"
    assert counter.count("Hello world") == 2  # tiktoken o200k_base: [13225, 2375]
    assert counter.count("") == 0


def test_an_unknown_encoding_falls_back_to_an_approximation_that_says_so() -> None:
    counter = get_counter("no_such_encoding")

    assert not counter.exact
    assert counter.count("abcdefgh") == 2


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        (
            "/chat/completions",
            {"messages": [{"role": "user", "content": "Hello world"}]},
            TOKENS_PER_MESSAGE + 1 + 2 + TOKENS_PER_REPLY,
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello world"}]}]},
            TOKENS_PER_MESSAGE + 1 + 2 + TOKENS_PER_REPLY,
        ),
        ("/responses", {"input": "Hello world"}, 2),
        ("/responses", {"input": "Hello world", "instructions": "Hello world"}, 4),
        ("/embeddings", {"input": ["Hello world", "Hello world"]}, 4),
        ("/completions", {"prompt": "Hello world"}, 2),
    ],
)
def test_request_tokens_follow_openais_accounting(endpoint: str, body: dict[str, Any], expected: int) -> None:
    assert count_request_tokens(endpoint, body) == expected


def test_an_image_adds_its_estimate_and_makes_the_count_inexact() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]}
    estimator = TokenEstimator()
    estimator.add("/chat/completions", body)

    assert estimator.total == TOKENS_PER_MESSAGE + 1 + TOKENS_PER_IMAGE + TOKENS_PER_REPLY
    assert not estimator.exact
    assert request_text("/chat/completions", body).images == 1


def test_malformed_bodies_contribute_what_can_be_read_and_never_fail() -> None:
    bodies: tuple[dict[str, Any], ...] = (
        {},
        {"messages": "x"},
        {"messages": [1, {"role": 2, "content": {"a": 1}}]},
        {"messages": [{"role": "user", "content": [1, {"type": ["x"]}, {"type": "text", "text": 5}]}]},
        {"input": [1, None, {"role": "user", "content": [{"type": {"a": 1}}]}]},
        {"prompt": [[1, 2]], "input": {"a": 1}},
    )
    for body in bodies:
        for endpoint in ("/chat/completions", "/responses", "/embeddings", "/completions", "/other"):
            assert count_request_tokens(endpoint, body) >= 0


def test_an_approximate_counter_makes_the_estimate_inexact() -> None:
    estimator = TokenEstimator(counter=TokenCounter(lambda text: len(text), exact=False, encoding="approximate"))
    estimator.add("/responses", {"input": "abcd"})

    assert (estimator.total, estimator.exact) == (4, False)


def test_a_sampled_estimate_is_close_to_the_exact_count_and_says_it_is_not_exact() -> None:
    texts = [f"Customer {n} writes: the delivery of order {n * 7919 % 1000} was late again." for n in range(600)]
    exact, sampled = TokenEstimator(), TokenEstimator(sample_every=7)
    for text in texts:
        exact.add("/chat/completions", {"messages": [{"role": "user", "content": text}]})
        sampled.add("/chat/completions", {"messages": [{"role": "user", "content": text}]})

    assert exact.exact
    assert not sampled.exact
    assert abs(sampled.total - exact.total) <= 0.02 * exact.total
