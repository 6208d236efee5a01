"""Enqueued-token amounts (Azure's Global-Batch quota) as people and Azure write them: `30K`, `1.5M`, `1,000,000`.

One reading for the settings (`AOAI_BATCH_ENQUEUED_TOKENS`, `AOAI_EMULATOR_ENQUEUED_TOKENS`, the pool file),
one writing for the emulator's `token_limit_exceeded` message, and one way to find the limit such a message
names, so what the emulator says is what a run learns. No pydantic, no environment: plain functions.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

TOKEN_LIMIT_EXCEEDED: Final = "token_limit_exceeded"  # Azure's code, at create (fail fast) or in a batch's errors
SUFFIXES = {"K": 10**3, "M": 10**6, "B": 10**9}
EXAMPLE = "gpt-4o-mini=1M,gpt-4o=200000000"
_NUMBER = re.compile(r"(\d+|\d{1,3}(,\d{3})+)(\.\d+)?")  # 1000, 1,000 or 1.5: never 1e3 or 1,00
_AMOUNT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*([KMB])?(?!\w)", re.IGNORECASE)
_LIMIT = re.compile(r"\blimit\b(?:\s+of)?\s*:?\s*" + _AMOUNT.pattern, re.IGNORECASE)


def parse_token_amount(text: str) -> int:
    """`1000`, `1,000,000`, `30K`, `1.5M`, `15B` (suffixes in any case) as a whole number of tokens >= 0.

    Raises ValueError saying what is wrong.
    """
    raw = text.strip().replace("_", "")
    number, suffix = raw, ""
    if raw[-1:].upper() in SUFFIXES:
        number, suffix = raw[:-1].strip(), raw[-1].upper()
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"{text!r} is not a token count; write e.g. 200000, 1,000,000, 30K, 1.5M or 1B")
    value = Decimal(number.replace(",", "")) * SUFFIXES.get(suffix, 1)
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of tokens")
    return int(value)


def parse_token_limits(text: str) -> dict[str, int]:
    """`name=tokens,...` (e.g. `gpt-4o-mini=1M,gpt-4o=200000000`) as {deployment: tokens}; blank is none.

    Raises ValueError naming the item that is wrong.
    """
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, amount = item.partition("=")
        name = name.strip()
        if not sep or not name or not amount.strip():
            raise ValueError(f"{item!r} is not name=tokens; write e.g. {EXAMPLE}")
        if name in limits:
            raise ValueError(f"deployment {name!r} is given twice")
        try:
            limits[name] = parse_token_amount(amount)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if limits[name] == 0:
            raise ValueError(f"{name}: a limit of 0 tokens would let no batch in; give at least 1")
    return limits


def token_amount(tokens: int) -> str:
    """`tokens` as Azure writes a quota (`30K`, `1.5M`, `15B`) when that is exact, else in full (`1,234,567`).

    Exact, so that the limit a message names is the limit (`limit_named_in` reads it back).
    """
    for suffix, unit in sorted(SUFFIXES.items(), key=lambda item: -item[1]):
        if tokens >= unit:
            short = Decimal(tokens) / unit
            if short == round(short, 2):
                return f"{short.normalize():f}{suffix}"
            break
    return f"{tokens:,}"


def limit_named_in(message: str) -> int | None:
    """The token limit a `token_limit_exceeded` message names (`limit of 30K`, `limit: 1,000,000`), or None."""
    match = _LIMIT.search(message)
    if match is None:
        return None
    try:
        return parse_token_amount(match.group(1) + (match.group(2) or ""))
    except ValueError:
        return None
