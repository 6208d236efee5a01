"""Azure's wire variants, normalised once: raw JSON dicts in, `Batch` and `FileInfo` out.

Azure sometimes capitalises statuses (`Validating`, `InProgress`), sends timestamps as epoch seconds or
ISO strings, empty strings for absent file ids, `errors` as an object with `data` or as a bare list, and
`endpoint` as null. OpenAI and the emulator's standard format pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast, get_args

from aoai_batch.errors import InvalidRequest
from aoai_batch.models import (
    TERMINAL_STATUSES,
    Backend,
    Batch,
    BatchError,
    BatchStatus,
    FileInfo,
    RequestCounts,
)

BATCH_STATUSES: frozenset[str] = frozenset(get_args(BatchStatus))
TIME_FIELDS = (
    "created_at",
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "expires_at",
    "cancelling_at",
    "cancelled_at",
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_MILLISECONDS_THRESHOLD = 100_000_000_000  # epoch seconds stay below this until the year 5138


def snake_case(value: str) -> str:
    """`InProgress`, `in-progress`, `In Progress` and `in_progress` all become `in_progress`."""
    spaced = _CAMEL_BOUNDARY.sub("_", value.strip())
    return re.sub(r"[\s\-]+", "_", spaced).lower()


def batch_status(value: object) -> BatchStatus:
    status = snake_case(str(value or ""))
    if status == "canceled":
        status = "cancelled"
    if status not in BATCH_STATUSES:
        raise InvalidRequest(
            f"The service reported an unknown batch status {value!r}; update aoai-batch-mcp.",
            code="unknown_status",
        )
    return cast(BatchStatus, status)


def timestamp(value: object) -> datetime | None:
    """Epoch seconds (or milliseconds), digit strings and ISO 8601 strings, as an aware UTC datetime."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int | float):
        if value <= 0:
            return None
        seconds = value / 1000 if value >= _MILLISECONDS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        return _iso_timestamp(value)
    return None


def _iso_timestamp(value: str) -> datetime | None:
    text = _LONG_FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def optional_id(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def batch_errors(value: object) -> list[BatchError]:
    """`errors` as `{"object": "list", "data": [...]}`, a bare list, a single error object, or null."""
    if isinstance(value, Mapping):
        items: object = value.get("data") if "data" in value else [value]
    else:
        items = value
    if not isinstance(items, list):
        return []
    return [_batch_error(item) for item in items if isinstance(item, Mapping)]


def _batch_error(item: Mapping[str, Any]) -> BatchError:
    line = item.get("line")
    if isinstance(line, str) and line.strip().isdigit():
        line = int(line)
    return BatchError(
        code=optional_id(item.get("code")),
        message=None if item.get("message") is None else str(item.get("message")),
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        param=optional_id(item.get("param")),
    )


def request_counts(value: object) -> RequestCounts:
    if not isinstance(value, Mapping):
        return RequestCounts()
    return RequestCounts(**{name: _count(value.get(name)) for name in ("total", "completed", "failed")})


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def progress_percent(status: BatchStatus, counts: RequestCounts) -> float | None:
    if counts.total > 0:
        return round(min(100.0, 100.0 * (counts.completed + counts.failed) / counts.total), 1)
    return 100.0 if status == "completed" else None


def metadata(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): "" if item is None else str(item) for key, item in value.items()}


def to_batch(raw: Mapping[str, Any], backend: Backend) -> Batch:
    """One batch object as any backend sends it."""
    status = batch_status(raw.get("status"))
    counts = request_counts(raw.get("request_counts"))
    endpoint = optional_id(raw.get("endpoint"))
    return Batch(
        id=str(raw["id"]),
        status=status,
        terminal=status in TERMINAL_STATUSES,
        endpoint=endpoint,
        input_file_id=optional_id(raw.get("input_file_id")),
        output_file_id=optional_id(raw.get("output_file_id")),
        error_file_id=optional_id(raw.get("error_file_id")),
        completion_window=optional_id(raw.get("completion_window")),
        request_counts=counts,
        progress_percent=progress_percent(status, counts),
        errors=batch_errors(raw.get("errors")),
        metadata=metadata(raw.get("metadata")),
        backend=backend,
        **{name: timestamp(raw.get(name)) for name in TIME_FIELDS},
    )


def to_file(raw: Mapping[str, Any], backend: Backend) -> FileInfo:
    """One file object as any backend sends it (Azure's statuses: uploaded, pending, running, processed...)."""
    size = raw.get("bytes")
    status = raw.get("status")
    return FileInfo(
        id=str(raw["id"]),
        filename=optional_id(raw.get("filename")),
        bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
        purpose=optional_id(raw.get("purpose")),
        status=snake_case(str(status)) if status else None,
        status_details=optional_id(raw.get("status_details")),
        created_at=timestamp(raw.get("created_at")),
        expires_at=timestamp(raw.get("expires_at")),
        backend=backend,
    )
