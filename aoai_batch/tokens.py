"""Input-token estimates for batch requests.

Counts are exact with the o200k_base encoding bundled by `bpe-openai` (the same ids as tiktoken, with no
download). Deployment names say nothing about their model's encoding, so o200k_base (GPT-4o and later) is
the default. Without the encoding, a characters/4 approximation is used and flagged as one.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ENCODING = "o200k_base"
# OpenAI's published accounting for chat models: every message costs 3 tokens of framing (plus 1 for
# a `name`), and every request 3 more to prime the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_REPLY = 3
# A low-detail image costs 85 tokens; high detail costs more, depending on its size, so any image makes
# the estimate approximate.
TOKENS_PER_IMAGE = 85
APPROX_CHARS_PER_TOKEN = 4
TEXT_PART_TYPES = frozenset({"text", "input_text"})
IMAGE_PART_TYPES = frozenset({"image_url", "input_image"})


class ImageTokens(int):
    """The tokens of an image part: an estimate, not a count."""


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of a text; `exact` is False when it only approximates."""

    count: Callable[[str], int]
    exact: bool
    encoding: str


def _approximate(text: str) -> int:
    return -(-len(text) // APPROX_CHARS_PER_TOKEN)


@functools.cache
def get_counter(encoding: str = DEFAULT_ENCODING) -> TokenCounter:
    """The counter for `encoding`, or the approximation if the encoding cannot be loaded."""
    try:
        # Imported here, not at the top: `bpe_openai` takes ~0.7 s to import, and the MCP server and the
        # CLI import this module at start-up although most sessions never count tokens.
        with warnings.catch_warnings():
            # bpe_openai 0.1.4 loads its data with the deprecated importlib.resources.open_binary.
            warnings.simplefilter("ignore", DeprecationWarning)
            bindings = importlib.import_module("bpe_openai._bindings")
        tokenizer = bindings.tokenizer_for_encoding(encoding)
    except (ImportError, ValueError, RuntimeError, OSError):  # not installed, or no such encoding
        return TokenCounter(_approximate, exact=False, encoding="approximate")
    return TokenCounter(tokenizer.count, exact=True, encoding=encoding)


def iter_request_text(endpoint: str, body: dict[str, Any]) -> Iterator[str | int]:
    """The texts of a request body, and ints for tokens that are not text (framing, images)."""
    if endpoint.endswith("/chat/completions"):
        yield from _chat_text(body.get("messages"))
        yield TOKENS_PER_REPLY
    elif endpoint.endswith("/responses"):
        yield from _input_text(body.get("instructions"))
        yield from _input_text(body.get("input"))
    elif endpoint.endswith("/embeddings"):
        yield from _input_text(body.get("input"))
    elif endpoint.endswith("/completions"):
        yield from _input_text(body.get("prompt"))


def _chat_text(messages: object) -> Iterator[str | int]:
    if type(messages) is not list:
        return
    for message in messages:
        if type(message) is not dict:
            continue
        yield TOKENS_PER_MESSAGE
        role = message.get("role")
        if type(role) is str:
            yield role
        name = message.get("name")
        if type(name) is str:
            yield name
            yield TOKENS_PER_NAME
        yield from _content_text(message.get("content"))


def _input_text(value: object) -> Iterator[str | int]:
    """A `/responses` input, an embeddings input or a prompt: a string, or a list of strings/messages."""
    if type(value) is str:
        yield value
    elif type(value) is list:
        for item in value:
            if type(item) is str:
                yield item
            elif type(item) is dict:
                yield from _chat_text([item])


def _content_text(content: object) -> Iterator[str | int]:
    if type(content) is str:
        yield content
    elif type(content) is list:
        for part in content:
            if type(part) is not dict:
                continue
            kind = part.get("type")
            text = part.get("text")
            if kind in TEXT_PART_TYPES and type(text) is str:
                yield text
            elif kind in IMAGE_PART_TYPES:
                yield ImageTokens(TOKENS_PER_IMAGE)


@dataclass
class TokenEstimator:
    """Adds up the input tokens of a file's requests.

    With `sample_every` > 1 only every n-th request's text is tokenized; the other requests' text is
    measured in characters and converted at the tokens-per-character rate of the sample. The framing
    tokens are always counted for every request.
    """

    sample_every: int = 1
    counter: TokenCounter = field(default_factory=get_counter)
    _seen: int = 0
    _fixed: int = 0
    _chars: int = 0
    _sampled_chars: int = 0
    _sampled_tokens: int = 0
    _has_images: bool = False

    def add(self, endpoint: str, body: dict[str, Any]) -> None:
        sampled = self._seen % self.sample_every == 0
        self._seen += 1
        count = self.counter.count
        for item in iter_request_text(endpoint, body):
            if not isinstance(item, str):
                self._fixed += item
                self._has_images |= type(item) is ImageTokens
                continue
            self._chars += len(item)
            if sampled:
                self._sampled_chars += len(item)
                self._sampled_tokens += count(item)

    @property
    def total(self) -> int:
        if self._sampled_chars == 0:
            return self._fixed
        if self._sampled_chars == self._chars:
            return self._fixed + self._sampled_tokens
        return self._fixed + round(self._sampled_tokens * self._chars / self._sampled_chars)

    @property
    def exact(self) -> bool:
        """True when every text was tokenized with a real encoding and no image was involved."""
        return self.counter.exact and self._sampled_chars == self._chars and not self._has_images


def count_request_tokens(endpoint: str, body: dict[str, Any]) -> int:
    """The estimated input tokens of one request body."""
    estimator = TokenEstimator()
    estimator.add(endpoint, body)
    return estimator.total
