"""How records look on the wire: Azure's standard answers, Azure's other observed format, and OpenAI's.

- `standard` (Azure, the spec): epoch seconds, lower-case status. A batch carries every field, `null`
  when unset, as the seeds' samples and the spec's own examples do (the schema marks none of them
  nullable: there the seeds win); files and lists leave out fields without a value.
- `legacy` (Azure, as observed in the seeds): ISO 8601 strings with 7 fractional digits, capitalised
  status (`Validating`, `InProgress`), explicit nulls, `errors` always an object with `data`, a missing
  output file as an empty string.
- `openai` (the `/v1/...` routes): epoch seconds, explicit nulls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from aoai_batch.emulator.records import EmulatedBatch, EmulatedFile

Style = Literal["standard", "legacy", "openai"]
TIMES = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def _time(value: float | None, style: Style) -> int | str | None:
    if value is None:
        return None
    if style == "legacy":
        moment = datetime.fromtimestamp(value, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0+00:00"
    return int(value)


def _finish(data: dict[str, Any], style: Style) -> dict[str, Any]:
    if style == "standard":
        return {key: value for key, value in data.items() if value is not None}
    return data


def batch_json(record: EmulatedBatch, style: Style) -> dict[str, Any]:
    status: str = record.status
    if style == "legacy":
        status = "".join(part.capitalize() for part in status.split("_"))
    counts: dict[str, int | None] = {"total": record.total, "completed": record.completed, "failed": record.failed}
    if style == "legacy" and record.status == "failed":
        counts["completed"] = counts["failed"] = None
    errors: dict[str, Any] | None = None
    if record.errors or style == "legacy":
        items = record.errors if style != "standard" else [_finish(e, style) for e in record.errors]
        errors = {"object": "list", "data": items}
    data: dict[str, Any] = {
        "id": record.id,
        "object": "batch",
        "endpoint": record.endpoint,
        "errors": errors,
        "input_file_id": record.input_file_id,
        "completion_window": record.completion_window,
        "status": status,
        "output_file_id": record.output_file_id,
        "error_file_id": record.error_file_id,
    }
    if style == "legacy" and record.output_file_id is None and record.status in {"completed", "failed"}:
        data["output_file_id"] = ""
    data.update({name: _time(getattr(record, name), style) for name in TIMES})
    data["request_counts"] = counts
    data["metadata"] = record.metadata
    return data


def file_status(record: EmulatedFile, now: float) -> str:
    return "processed" if now >= record.ready_at else "pending"


def file_json(record: EmulatedFile, now: float, style: Style) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": int(record.created_at),
        "filename": record.filename,
        "purpose": record.purpose,
        "status": file_status(record, now),
        "status_details": None,
        "expires_at": int(record.expires_at) if record.expires_at is not None else None,
    }
    return _finish(data, style)


def list_json(items: list[dict[str, Any]], has_more: bool, style: Style) -> dict[str, Any]:
    data: dict[str, Any] = {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }
    return _finish(data, style)


def error_json(status: int, code: str, message: str, param: str | None, style: Style) -> dict[str, Any]:
    """Azure's `{"error": {"code", "message"}}`, or OpenAI's `{"error": {"message", "type", "param", "code"}}`."""
    if style == "openai":
        kind = "invalid_request_error"
        if status == 401:
            kind = "authentication_error"
        elif status == 429:
            kind = "rate_limit_error" if code == "tooManyRequests" else "insufficient_quota"
        elif status >= 500:
            kind = "server_error"
        return {"error": {"message": message, "type": kind, "param": param, "code": _openai_code(code)}}
    error: dict[str, Any] = {"code": code, "message": message}
    if param:
        error["target"] = param
    return {"error": error}


def _openai_code(code: str) -> str | None:
    return {
        "unauthorized": "invalid_api_key",
        "notFound": None,
        "tooManyRequests": "rate_limit_exceeded",
        "quotaExceeded": "quota_exceeded",
    }.get(code, None if code == "invalidPayload" else code)
