"""The two per-file limits (SPEC §2, §8), read from the environment without pydantic.

`aoai-batch-mcp validate` and `build` need only these two settings, and importing `Settings`
(pydantic-settings and pydantic) would be most of `validate`'s start-up (bench/validate.py). So this is
the one reader of the environment besides `settings.py`, for these two variables only, and it reads them
as `Settings` does (tests/aoai_batch/test_limits.py compares the two).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from aoai_batch.errors import InvalidInput


class FileLimits(NamedTuple):
    max_requests: int
    max_bytes: int


DEFAULT_LIMITS = FileLimits(max_requests=100_000, max_bytes=200_000_000)
MAX_REQUESTS_VARIABLE = "AOAI_BATCH_MAX_REQUESTS"
MAX_BYTES_VARIABLE = "AOAI_BATCH_MAX_BYTES"


def file_limits(environ: Mapping[str, str] | None = None) -> FileLimits:
    """The limits from `AOAI_BATCH_MAX_REQUESTS` and `AOAI_BATCH_MAX_BYTES` (unset or empty: the defaults).

    Raises InvalidInput naming the variable (never its value) when one is not a whole number above 0.
    """
    env = os.environ if environ is None else environ
    return FileLimits(
        max_requests=_positive_int(env, MAX_REQUESTS_VARIABLE, DEFAULT_LIMITS.max_requests),
        max_bytes=_positive_int(env, MAX_BYTES_VARIABLE, DEFAULT_LIMITS.max_bytes),
    )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "")
    if not text:
        return default
    value = _whole_number(text.strip())
    if value is None or value < 1:
        raise InvalidInput(f"a setting is invalid: it must be a whole number above 0 ({name})")
    return value


def _whole_number(text: str) -> int | None:
    """`text` as an int the way pydantic reads one from a string ("5", "+5", "1_000", "5.0"), else None."""
    if not text.isascii():
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None
