"""Input-token estimates for batch requests.

Counts are exact with the o200k_base encoding bundled by `bpe-openai` (the same ids as tiktoken, with no
download). Deployment names say nothing about their model's encoding, so o200k_base (GPT-4o and later) is
the default. Without the encoding, a characters/4 approximation is used and flagged as one.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of a text; `exact` is False when it only approximates."""

    count: Callable[[str], int]
    exact: bool
    encoding: str


def _approximate(text: str) -> int:
    return -(-len(text) // APPROX_CHARS_PER_TOKEN)


# Characters/4: for when an estimate is enough and the tokenizer's memory is not worth it (upload's check).
APPROXIMATE = TokenCounter(_approximate, exact=False, encoding="approximate")


@functools.cache
def get_counter(encoding: str = DEFAULT_ENCODING) -> TokenCounter:
    """The counter for `encoding`, or the approximation if the encoding cannot be loaded."""
    try:
        tokenizer = _load_bindings().tokenizer_for_encoding(encoding)
    except (ImportError, ValueError, RuntimeError, OSError):  # not installed, or no such encoding
        return APPROXIMATE
    return TokenCounter(tokenizer.count, exact=True, encoding=encoding)


def _load_bindings() -> Any:
    """bpe_openai's Rust extension, loaded without running the package's `__init__`.

    Loaded on first use, not at the top: the MCP server and the CLI import this module at start-up
    although most sessions never count tokens. And loaded directly, because the package's `__init__`
    eagerly builds every bundled encoding as Python dicts (0.7 s, ~120 MB) that the Rust tokenizer,
    which carries its own tables, never uses.
    """
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("bpe_openai is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    library = next(folder.glob("_bindings*.so"), None) or next(folder.glob("_bindings*.pyd"), None)
    if library is None:
        with warnings.catch_warnings():
            # bpe_openai 0.1.4 loads its data with the deprecated importlib.resources.open_binary.
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module("bpe_openai._bindings")
    bindings_spec = importlib.util.spec_from_file_location("bpe_openai._bindings", library)
    if bindings_spec is None or bindings_spec.loader is None:
        raise ImportError(f"cannot load {library}")
    module = importlib.util.module_from_spec(bindings_spec)
    bindings_spec.loader.exec_module(module)
    return module


@dataclass
class RequestText:
    """What a request body holds for the tokenizer: its texts, the tokens that are not text, and images."""

    texts: list[str] = field(default_factory=list)
    fixed: int = 0
    images: int = 0

    def add_messages(self, messages: list[Any]) -> None:
        texts = self.texts
        for message in messages:
            if type(message) is not dict:
                continue
            self.fixed += TOKENS_PER_MESSAGE
            role = message.get("role")
            if type(role) is str:
                texts.append(role)
            content = message.get("content")
            if type(content) is str:
                texts.append(content)
            elif type(content) is list:
                self.add_parts(content)
            name = message.get("name")
            if type(name) is str:
                texts.append(name)
                self.fixed += TOKENS_PER_NAME

    def add_parts(self, parts: list[Any]) -> None:
        for part in parts:
            if type(part) is not dict:
                continue
            kind = part.get("type")
            if type(kind) is not str:
                continue
            text = part.get("text")
            if kind in TEXT_PART_TYPES and type(text) is str:
                self.texts.append(text)
            elif kind in IMAGE_PART_TYPES:
                self.images += 1
                self.fixed += TOKENS_PER_IMAGE

    def add_input(self, value: object) -> None:
        """A `/responses` input, an embeddings input or a prompt: a string, or a list of strings/messages."""
        if type(value) is str:
            self.texts.append(value)
        elif type(value) is list:
            for item in value:
                if type(item) is str:
                    self.texts.append(item)
                elif type(item) is dict:
                    self.add_messages([item])


def request_text(endpoint: str, body: dict[str, Any]) -> RequestText:
    """The texts of a request body (`endpoint` with or without a `/v1` prefix)."""
    found = RequestText()
    if endpoint.endswith("/chat/completions"):
        messages = body.get("messages")
        if type(messages) is list:
            found.add_messages(messages)
        found.fixed += TOKENS_PER_REPLY
    elif endpoint.endswith("/responses"):
        found.add_input(body.get("instructions"))
        found.add_input(body.get("input"))
    elif endpoint.endswith("/embeddings"):
        found.add_input(body.get("input"))
    elif endpoint.endswith("/completions"):
        found.add_input(body.get("prompt"))
    return found


def _plain_chat_size(body: dict[str, Any]) -> tuple[int, int] | None:
    """(characters, messages) when every message is just a role and a text (the common case, made fast)."""
    messages = body.get("messages")
    if type(messages) is not list:
        return None
    chars = 0
    for message in messages:
        if type(message) is not dict or len(message) != 2:
            return None
        role, content = message.get("role"), message.get("content")
        if type(role) is not str or type(content) is not str:
            return None
        chars += len(role) + len(content)
    return chars, len(messages)


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
    _images: int = 0

    def add(self, endpoint: str, body: dict[str, Any]) -> None:
        sampled = self._seen % self.sample_every == 0
        self._seen += 1
        if not sampled and endpoint == "/chat/completions":
            size = _plain_chat_size(body)
            if size is not None:
                self._chars += size[0]
                self._fixed += TOKENS_PER_MESSAGE * size[1] + TOKENS_PER_REPLY
                return
        found = request_text(endpoint, body)
        self._fixed += found.fixed
        self._images += found.images
        chars = sum(map(len, found.texts))
        self._chars += chars
        if sampled:
            self._sampled_chars += chars
            self._sampled_tokens += sum(map(self.counter.count, found.texts))

    @property
    def total(self) -> int:
        if self._sampled_chars == self._chars:
            return self._fixed + self._sampled_tokens
        if self._sampled_chars == 0:  # only empty texts were sampled: fall back to the approximation
            return self._fixed + -(-self._chars // APPROX_CHARS_PER_TOKEN)
        return self._fixed + round(self._sampled_tokens * self._chars / self._sampled_chars)

    @property
    def exact(self) -> bool:
        """True when every text was tokenized with a real encoding and no image was involved."""
        return self.counter.exact and self._sampled_chars == self._chars and not self._images


OUTPUT_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""The body fields that cap a request's output (chat's old and new names, and /responses')."""


@dataclass
class OutputBound:
    """The most output tokens a file's requests can produce: the sum of their limits, None once one has none."""

    total: int | None = 0

    def add(self, body: dict[str, Any]) -> None:
        if self.total is None:
            return
        for name in OUTPUT_LIMIT_FIELDS:
            limit = body.get(name)
            if type(limit) is int and limit > 0:
                self.total += limit
                return
        self.total = None  # one request without a limit: the output has no bound
