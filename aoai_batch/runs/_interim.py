"""TEMPORARY stand-ins for runs-plan's `plan.py`/`retry.py` and runs-quota's `pool.py`, with the contract's
signatures, so the scheduler and `RunService` run before those branches land. Deleted once they are merged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from aoai_batch.errors import UnknownDeployment
from aoai_batch.fileio import atomic_writer
from aoai_batch.models import ResultCounts
from aoai_batch.runs.models import LimitSource, RunResultsSummary, RunStatus, ShardKind
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from aoai_batch.tokens import APPROXIMATE, TokenEstimator


def _line_tokens(line: bytes) -> int:
    estimator = TokenEstimator(counter=APPROXIMATE)
    request = orjson.loads(line)
    estimator.add(str(request.get("url", "")), request.get("body") or {})
    return estimator.total


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    offset = 0
    with path.open("rb") as handle:
        for line in handle:
            yield offset, line
            offset += len(line)


@dataclass(frozen=True, slots=True)
class RetryShard:
    path: Path
    requests: int
    bytes: int
    estimated_tokens: int
    custom_ids_count: int


def write_retry_shard(
    results_path: Path,
    shard_input: Path,
    dest: Path,
    *,
    batch_status: str,
    cancelled_by_user: bool,
    deployment: str,
) -> RetryShard | None:
    retry_ids: set[str] = set()
    for _, line in _lines(results_path):
        if not line.strip():
            continue
        row = orjson.loads(line)
        status = row.get("status")
        code = str((row.get("error") or {}).get("code") or "")
        retryable = code in {"429", "rate_limit_exceeded", "server_error", "internal_error", "500", "503", "timeout"}
        missing = status == "missing" and (
            batch_status == "expired" or (batch_status == "cancelled" and not cancelled_by_user)
        )
        if (status == "failed" and retryable) or missing:
            retry_ids.add(str(row.get("custom_id")))
    if not retry_ids:
        return None
    requests = size = tokens = 0
    with atomic_writer(dest, overwrite=True) as handle:
        for _, line in _lines(shard_input):
            if not line.strip() or str(orjson.loads(line).get("custom_id")) not in retry_ids:
                continue
            handle.write(line if line.endswith(b"\n") else line + b"\n")
            requests += 1
            size += len(line)
            tokens += _line_tokens(line)
    return RetryShard(dest, requests, size, tokens, len(retry_ids))


@dataclass(frozen=True, slots=True)
class PoolDeployment:
    name: str
    deployment: str
    resource: str
    enqueued_tokens: int | None
    limit_source: LimitSource | None


class ServicePool:
    """Only this server's own resource; no limits known (runs-quota's pool adds the file and the settings)."""

    def __init__(self, settings: Settings, main: BatchService) -> None:
        self._main = main

    def lookup(self, name: str) -> PoolDeployment:
        known = self._main.file_rules.deployments
        if known is not None and name not in known:
            raise UnknownDeployment(name, list(known))
        return PoolDeployment(name, name, "default", None, None)

    def service(self, name: str) -> BatchService:
        return self._main

    def names(self) -> list[str]:
        return []


@dataclass(frozen=True, slots=True)
class ShardResults:
    kind: ShardKind
    results_path: Path
    errors_path: Path | None
    batch_id: str
    attempt: int


def merge_run_results(
    parts: Sequence[ShardResults],
    *,
    input_path: Path,
    source_path: Path | None,
    output_dir: Path,
    format: Literal["jsonl", "csv"],
    preview: int,
    overwrite: bool,
    run_id: str,
    run_status: RunStatus,
) -> RunResultsSummary:
    latest: dict[str, dict[str, Any]] = {}
    attempts: dict[str, int] = {}
    for part in parts:
        for _, line in _lines(part.results_path):
            if line.strip():
                row = orjson.loads(line)
                latest[row["custom_id"]] = {**row, "batch_id": part.batch_id}
                attempts[row["custom_id"]] = attempts.get(row["custom_id"], 0) + 1
    output_dir.mkdir(parents=True, exist_ok=True)
    results_path = output_dir / f"{run_id}-results.jsonl"
    counts = ResultCounts()
    with atomic_writer(results_path, overwrite=overwrite) as handle:
        for _, line in _lines(input_path):
            if not line.strip():
                continue
            custom_id = str(orjson.loads(line)["custom_id"])
            row = latest.get(custom_id, {"custom_id": custom_id, "status": "missing"})
            row["attempts"] = attempts.get(custom_id, 0)
            status = row["status"]
            counts = counts.model_copy(update={status: getattr(counts, status) + 1})
            handle.write(orjson.dumps(row) + b"\n")
    return RunResultsSummary(
        format=format,
        results_path=str(results_path),
        counts=counts,
        run_id=run_id,
        run_status=run_status,
        shards=len(parts),
        retried=sum(1 for n in attempts.values() if n > 1),
    )
