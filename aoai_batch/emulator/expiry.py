"""File expiry: `expires_after` on an upload and `output_expires_after` on a batch (its output and error files).

Both are `{"anchor": "created_at", "seconds": N}` (the anchor is the file's own creation). Azure's
2025-04-01-preview spec bounds an upload's `seconds` to 1,209,600-2,592,000 (14-30 days) and types
`output_expires_after` the same (`FileExpiresAfter`; Azure's batch how-to gives it the same 14-30 days);
OpenAI allows 3,600-2,592,000 (1 hour to 30 days) for both.
An upload form may spell the fields `expires_after[anchor]` (as the SDKs send them), `expires_after.anchor`
(as Azure's spec names them), or send `expires_after` as one JSON object.
"""

from __future__ import annotations

import orjson

from aoai_batch.emulator.api_errors import ApiError, invalid
from aoai_batch.limits import MAX_FILE_EXPIRY_DAYS, MIN_FILE_EXPIRY_DAYS

ANCHOR = "created_at"
DAY_SECONDS = 86_400
MAX_SECONDS = MAX_FILE_EXPIRY_DAYS * DAY_SECONDS  # 2,592,000
AZURE_MIN_SECONDS = MIN_FILE_EXPIRY_DAYS * DAY_SECONDS  # 1,209,600
OPENAI_MIN_SECONDS = 3_600
FORM_SPELLINGS = ("expires_after[{}]", "expires_after.{}")


def upload_expiry(fields: dict[str, str], minimum: int) -> int | None:
    """Seconds until an uploaded file expires, from the form, or None when it has no expiry."""
    anchor, seconds = _form_part(fields, "anchor"), _form_part(fields, "seconds")
    if "expires_after" in fields:
        if anchor is not None or seconds is not None:
            raise invalid("Send expires_after once: as one JSON object or as its two fields.", "expires_after")
        try:
            value = orjson.loads(fields["expires_after"])
        except orjson.JSONDecodeError:
            raise _not_an_object("expires_after") from None
        return checked_expiry(value, minimum, "expires_after")
    if anchor is None and seconds is None:
        return None
    if not (seconds or "").isdigit():
        raise invalid("expires_after[seconds] must be a whole number of seconds.", "expires_after")
    return checked_expiry({"anchor": anchor, "seconds": int(seconds or "")}, minimum, "expires_after")


def checked_expiry(value: object, minimum: int, name: str) -> int:
    """The seconds of an `{"anchor": "created_at", "seconds": N}` object, or a 400 saying what is wrong."""
    if not isinstance(value, dict):
        raise _not_an_object(name)
    if value.get("anchor") != ANCHOR:
        raise invalid(f"{name}.anchor must be {ANCHOR}.", name)
    seconds = value.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise invalid(f"{name}.seconds must be a whole number of seconds.", name)
    if not minimum <= seconds <= MAX_SECONDS:
        raise invalid(f"{name}.seconds must be between {minimum} and {MAX_SECONDS}.", name)
    return seconds


def _form_part(fields: dict[str, str], part: str) -> str | None:
    values = {fields[key] for key in (spelling.format(part) for spelling in FORM_SPELLINGS) if key in fields}
    if len(values) > 1:
        raise invalid(f"expires_after {part} is sent twice with different values.", "expires_after")
    return values.pop() if values else None


def _not_an_object(name: str) -> ApiError:
    return invalid(f'{name} must be an object: {{"anchor": "{ANCHOR}", "seconds": N}}.', name)
