"""Which failed requests of a collected shard are sent again, and the retry shard's file of them.

Retryable: a request that failed for a cause that passes (a rate limit, a server error, a timeout), and a
request that never ran (`missing`) because its batch expired or the service cancelled it. Not retryable: any
other failure (the request itself is wrong: its Azure code stays in the results), and the requests of a batch
the user cancelled (cancel_run: they were not meant to run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from aoai_batch.endpoints import bare_endpoint
from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer
from aoai_batch.jsonl import MAX_LINE_BYTES, open_for_reading
from aoai_batch.runs.plan import WRITE_BUFFER, line_rewriter, line_tokens

RETRYABLE_CODES = frozenset(
    {
        "rate_limit_exceeded",
        "rate_limited",
        "too_many_requests",
        "429",
        "server_error",
        "internal_error",
        "internal_server_error",
        "service_unavailable",
        "bad_gateway",
        "gateway_timeout",
        "timeout",
        "request_timeout",
        "timed_out",
        "batch_expired",
        "batch_cancelled",
    }
)
NOT_RUN_BATCH_STATUSES = frozenset({"expired", "cancelled"})


@dataclass(frozen=True, slots=True)
class RetryShard:
    path: Path
    requests: int
    bytes: int
    estimated_tokens: int
    custom_ids_count: int


def is_retryable_code(code: object) -> bool:
    """A rate limit, a server error or a timeout, by its code (`http_429`, `http_5xx` when only the status is known)."""
    if type(code) is not str:
        return False
    code = code.lower()
    if code in RETRYABLE_CODES or "rate_limit" in code or "timeout" in code:
        return True
    if code.startswith("http_") and code[5:].isdigit():
        status = int(code[5:])
        return status == 429 or status == 408 or status >= 500
    return False


def is_retryable(row: Mapping[str, Any], *, batch_status: str, cancelled_by_user: bool) -> bool:
    """Whether a results row (as `fetch_results` writes it) is sent again."""
    status = row.get("status")
    if status == "missing":
        if batch_status == "expired":
            return True
        return batch_status == "cancelled" and not cancelled_by_user
    if status == "failed":
        error = row.get("error")
        return isinstance(error, Mapping) and is_retryable_code(error.get("code"))
    return False


class _Error(msgspec.Struct, gc=False):
    code: Any = None


class _Row(msgspec.Struct, gc=False):
    custom_id: Any = None
    status: Any = None
    error: _Error | None = None


_ROW = msgspec.json.Decoder(_Row)


def write_retry_shard(
    results_path: Path,
    shard_input: Path,
    dest: Path,
    *,
    batch_status: str,
    cancelled_by_user: bool,
    deployment: str,
) -> RetryShard | None:
    """Write `dest`: the lines of `shard_input` whose rows in `results_path` are retryable, body.model set to
    `deployment`; None (and no file) when nothing is to be retried.

    `results_path` is the shard's fetch_results JSONL: one row per line of `shard_input`, in its order.
    Raises InvalidInput when the two do not line up (a results file of another shard).
    """
    try:
        return _write_retry(results_path, shard_input, Path(dest), batch_status, cancelled_by_user, deployment)
    except _NothingToRetry:
        return None


def _write_retry(
    results_path: Path, shard_input: Path, dest: Path, batch_status: str, cancelled_by_user: bool, deployment: str
) -> RetryShard:
    rewrite = line_rewriter(orjson.dumps(deployment))
    requests = size = tokens = 0
    endpoint: str | None = None
    with (
        open_for_reading(results_path) as results,
        open_for_reading(shard_input) as lines,
        atomic_writer(dest, overwrite=True, buffering=WRITE_BUFFER) as out,
    ):
        for row_data in iter(lambda: results.readline(MAX_LINE_BYTES), b""):
            line = lines.readline(MAX_LINE_BYTES)
            row = _ROW.decode(row_data)
            request = orjson.loads(line) if line else None
            if type(request) is not dict or request.get("custom_id") != row.custom_id:
                raise InvalidInput(f"{results_path} does not line up with {shard_input}: they are of different shards.")
            error = {"code": row.error.code} if row.error is not None else None
            retry = is_retryable(
                {"status": row.status, "error": error}, batch_status=batch_status, cancelled_by_user=cancelled_by_user
            )
            if not retry:
                continue
            if endpoint is None:
                endpoint = bare_endpoint(request["url"])
            data = rewrite(line.rstrip(b"\r\n")) + b"\n"
            out.write(data)
            requests += 1
            size += len(data)
            body = request.get("body")
            tokens += line_tokens(endpoint, body) if type(body) is dict else 0
        if not requests:
            raise _NothingToRetry
    return RetryShard(path=dest, requests=requests, bytes=size, estimated_tokens=tokens, custom_ids_count=requests)


class _NothingToRetry(Exception):
    """Leaves the atomic writer's block without publishing an empty file."""
