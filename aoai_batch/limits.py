"""Every bound of the product, stated once (SPEC §3, §8), and the rules a batch file is checked against.

The bounds are plain constants, so every layer states a range by naming one: the service's checks, the
tools' `Field(le=...)`, the command line's argument ranges, the settings and the emulator.

`FileRules` (the per-file limits and the deployments that exist) is what build, validate and upload check a
file against; `settings.file_rules(settings)` builds it once, when the service opens.

The two per-file limits are also read here from the environment without pydantic: `aoai-batch-mcp validate`
and `build` need only these two settings, and importing `Settings` (pydantic-settings and pydantic) would be
most of `validate`'s start-up (bench/validate.py). So this is the one reader of the environment besides
`settings.py`, for these two variables only, and it reads them as `Settings` does
(tests/aoai_batch/test_limits.py compares the two).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TypedDict

from aoai_batch.errors import InvalidInput

MAX_WAIT_SECONDS = 50
"""The longest wait in one call (`get_batch`'s `wait_seconds`, `status --wait`): clients end a call at ~60 s."""
MIN_FILE_EXPIRY_DAYS = 14
MAX_FILE_EXPIRY_DAYS = 30
"""An uploaded file's `expires_after`, in days: Azure accepts 14 to 30."""
DEFAULT_FILE_EXPIRY_DAYS = MIN_FILE_EXPIRY_DAYS
COMPLETION_WINDOWS = ("24h",)
"""The only completion window Azure offers."""
DEFAULT_COMPLETION_WINDOW = COMPLETION_WINDOWS[0]
MAX_METADATA_PAIRS = 16
"""Azure's limit of metadata pairs on a batch; one of them is kept for the idempotency key."""
MAX_USER_METADATA_PAIRS = MAX_METADATA_PAIRS - 1
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_IDEMPOTENCY_KEY_CHARS = MAX_METADATA_VALUE_CHARS  # it is stored as a metadata value


class RuleKeywords(TypedDict):
    max_requests: int
    max_bytes: int
    deployments: tuple[str, ...] | None


@dataclasses.dataclass(frozen=True, slots=True)
class FileRules:
    """What a batch file must keep to: at most `max_requests` requests and `max_bytes` bytes, inclusive, and,
    when the backend can list them, a deployment from `deployments` (None: names are not checked)."""

    max_requests: int
    max_bytes: int
    deployments: tuple[str, ...] | None = None

    def keywords(self) -> RuleKeywords:
        """The rules as the keyword arguments of `validate_file`, `check_file` and `build_batch_file`."""
        return RuleKeywords(max_requests=self.max_requests, max_bytes=self.max_bytes, deployments=self.deployments)


DEFAULT_LIMITS = FileRules(max_requests=100_000, max_bytes=200_000_000)


MAX_REQUESTS_VARIABLE = "AOAI_BATCH_MAX_REQUESTS"
MAX_BYTES_VARIABLE = "AOAI_BATCH_MAX_BYTES"


def file_limits(environ: Mapping[str, str] | None = None) -> FileRules:
    """The limits from `AOAI_BATCH_MAX_REQUESTS` and `AOAI_BATCH_MAX_BYTES` (unset or empty: the defaults),
    with no deployments to check names against.

    Raises InvalidInput naming the variable (never its value) when one is not a whole number above 0.
    """
    env = os.environ if environ is None else environ
    return FileRules(
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
