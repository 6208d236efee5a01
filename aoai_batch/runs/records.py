"""Runs, their shards, learned enqueued-token limits and run leases, in the job registry (schema 2 of `store.py`).

Everything a run needs to resume after a restart is here: a shard row names its input range (or its own file of
lines for a retry), its state, its deployment, the attempt whose idempotency key a create is sent under, the
uploaded file and the batch. A change of several rows (a shard collected and its retry shard queued, a shard
split into two) is written in one transaction, so a process killed in between leaves the old rows or the new.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import anyio.to_thread
import orjson

from aoai_batch.leases import RUN_LEASE_SECONDS
from aoai_batch.models import Backend, RequestCounts
from aoai_batch.runs.models import TERMINAL_RUN_STATUSES, RunStatus, ShardKind, ShardState
from aoai_batch.store import Store


class RunLeaseLost(Exception):
    """Another process took the run over (this one was silent past the lease): its step stops."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    status: RunStatus
    endpoint: str
    deployments: tuple[str, ...]
    retries: int
    input_path: str
    requests: int
    estimated_input_tokens: int
    backend: Backend
    created_at: float
    updated_at: float
    name: str | None = None
    idempotency_key: str | None = None
    source_path: str | None = None
    errors: tuple[str, ...] = ()
    results_summary: str | None = None  # RunResultsSummary JSON, once fetch_run_results wrote one
    estimated_cost: str | None = None  # EstimatedCost JSON, made at the start
    owner: str | None = None  # who started it (a signed-in user's `Principal.owner`); None without sign-in

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES


@dataclass(frozen=True, slots=True)
class ShardRecord:
    run_id: str
    index: int
    kind: ShardKind
    first_line: int  # input shards: the range of input.jsonl; retry shards: 0 and their own file's line count
    line_count: int
    start_byte: int
    end_byte: int
    estimated_tokens: int
    state: ShardState = "queued"
    lines_path: str | None = None  # a retry shard's own file of lines (an input shard reads input.jsonl)
    request_attempt: int = 1  # the attempt number of its requests: 1 for input shards, the parent's + 1 for retries
    parent: int | None = None
    deployment: str | None = None
    attempt: int = 0  # how many times it was submitted (the idempotency key's `a` part)
    refusals: int = 0  # token_limit_exceeded answers in a row (the backoff's exponent)
    upload_path: str | None = None  # the shard file last uploaded (its lines name `file_deployment`)
    file_id: str | None = None
    file_deployment: str | None = None  # the deployment the uploaded file's lines name
    batch_id: str | None = None
    batch_status: str | None = None
    request_counts: RequestCounts = field(default_factory=RequestCounts)
    next_try_at: float | None = None
    error: str | None = None
    results_path: str | None = None
    errors_path: str | None = None
    updated_at: float = 0.0

    @property
    def requests(self) -> int:
        return self.line_count


@dataclass(frozen=True, slots=True)
class LearnedLimit:
    deployment: str
    limit: int
    message: str
    learned_at: float


_RUN_COLUMNS = (
    "id, name, status, endpoint, deployments, retries, idempotency_key, input_path, source_path, requests, "
    "estimated_input_tokens, backend, errors, results_summary, created_at, updated_at, estimated_cost, owner"
)
_SHARD_COLUMNS = (
    "run_id, shard_index, kind, first_line, line_count, start_byte, end_byte, estimated_tokens, lines_path, "
    "request_attempt, parent, state, deployment, attempt, refusals, upload_path, file_id, file_deployment, batch_id, "
    "batch_status, request_counts, next_try_at, error, results_path, errors_path, updated_at"
)


def _marks(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def _run_params(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.id,
        run.name,
        run.status,
        run.endpoint,
        orjson.dumps(list(run.deployments)).decode(),
        run.retries,
        run.idempotency_key,
        run.input_path,
        run.source_path,
        run.requests,
        run.estimated_input_tokens,
        run.backend,
        orjson.dumps(list(run.errors)).decode(),
        run.results_summary,
        run.created_at,
        run.updated_at,
        run.estimated_cost,
        run.owner,
    )


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        name=row["name"],
        status=cast(RunStatus, row["status"]),
        endpoint=row["endpoint"],
        deployments=tuple(orjson.loads(row["deployments"])),
        retries=row["retries"],
        idempotency_key=row["idempotency_key"],
        input_path=row["input_path"],
        source_path=row["source_path"],
        requests=row["requests"],
        estimated_input_tokens=row["estimated_input_tokens"],
        backend=cast(Backend, row["backend"]),
        errors=tuple(orjson.loads(row["errors"])),
        results_summary=row["results_summary"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        estimated_cost=row["estimated_cost"],
        owner=row["owner"],
    )


def _shard_params(shard: ShardRecord) -> tuple[Any, ...]:
    return (
        shard.run_id,
        shard.index,
        shard.kind,
        shard.first_line,
        shard.line_count,
        shard.start_byte,
        shard.end_byte,
        shard.estimated_tokens,
        shard.lines_path,
        shard.request_attempt,
        shard.parent,
        shard.state,
        shard.deployment,
        shard.attempt,
        shard.refusals,
        shard.upload_path,
        shard.file_id,
        shard.file_deployment,
        shard.batch_id,
        shard.batch_status,
        shard.request_counts.model_dump_json(),
        shard.next_try_at,
        shard.error,
        shard.results_path,
        shard.errors_path,
        shard.updated_at,
    )


def _shard(row: sqlite3.Row) -> ShardRecord:
    counts = row["request_counts"]
    return ShardRecord(
        run_id=row["run_id"],
        index=row["shard_index"],
        kind=cast(ShardKind, row["kind"]),
        first_line=row["first_line"],
        line_count=row["line_count"],
        start_byte=row["start_byte"],
        end_byte=row["end_byte"],
        estimated_tokens=row["estimated_tokens"],
        lines_path=row["lines_path"],
        request_attempt=row["request_attempt"],
        parent=row["parent"],
        state=cast(ShardState, row["state"]),
        deployment=row["deployment"],
        attempt=row["attempt"],
        refusals=row["refusals"],
        upload_path=row["upload_path"],
        file_id=row["file_id"],
        file_deployment=row["file_deployment"],
        batch_id=row["batch_id"],
        batch_status=row["batch_status"],
        request_counts=RequestCounts.model_validate_json(counts) if counts else RequestCounts(),
        next_try_at=row["next_try_at"],
        error=row["error"],
        results_path=row["results_path"],
        errors_path=row["errors_path"],
        updated_at=row["updated_at"],
    )


class RunRecords:
    """The runs tables of the registry, for async code (each call in a worker thread, as `Store`'s)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._registry = store.registry

    # runs

    async def create(self, run: RunRecord, shards: Sequence[ShardRecord]) -> RunRecord:
        """Save a new run and its planned shards at once; a run already saved under its key is returned instead."""

        def write() -> RunRecord:
            with self._registry.transaction() as db:
                if run.idempotency_key is not None:
                    cursor = db.execute(
                        f"SELECT {_RUN_COLUMNS} FROM runs WHERE idempotency_key = ?", (run.idempotency_key,)
                    )
                    cursor.row_factory = sqlite3.Row
                    known = cursor.fetchone()
                    if known is not None:
                        return _run(known)
                db.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_marks(_RUN_COLUMNS)})", _run_params(run))
                db.executemany(
                    f"INSERT INTO run_shards ({_SHARD_COLUMNS}) VALUES ({_marks(_SHARD_COLUMNS)})",
                    [_shard_params(shard) for shard in shards],
                )
                return run

        return await anyio.to_thread.run_sync(write)

    async def get(self, run_id: str) -> RunRecord | None:
        rows = await self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    async def find_by_key(self, key: str) -> RunRecord | None:
        rows = await self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE idempotency_key = ?", (key,))
        return _run(rows[0]) if rows else None

    async def page(
        self, *, limit: int, after: str | None = None, owner: str | None = None
    ) -> tuple[list[RunRecord], bool]:
        """Newest first (by creation, then id); `after` a run id of the previous page. Also whether more follow.

        `owner`: only that user's runs (None: everyone's)."""
        order = "ORDER BY created_at DESC, id DESC"
        conditions = [*(["owner = ?"] if owner is not None else [])]
        params: list[Any] = [owner] if owner is not None else []
        if after is not None:
            conditions.append("(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)")
            params.append(after)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._read(f"SELECT {_RUN_COLUMNS} FROM runs {where} {order} LIMIT ?", (*params, limit + 1))
        runs = [_run(row) for row in rows]
        return runs[:limit], len(runs) > limit

    async def active(self) -> list[RunRecord]:
        """The runs not yet terminal, oldest first (the order a worker advances them)."""
        statuses = ", ".join(f"'{status}'" for status in sorted(TERMINAL_RUN_STATUSES))
        rows = await self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE status NOT IN ({statuses}) ORDER BY created_at, id"
        )
        return [_run(row) for row in rows]

    # shards

    async def shards(self, run_id: str) -> list[ShardRecord]:
        rows = await self._read(
            f"SELECT {_SHARD_COLUMNS} FROM run_shards WHERE run_id = ? ORDER BY shard_index", (run_id,)
        )
        return [_shard(row) for row in rows]

    async def save_shards(self, run_id: str, shards: Sequence[ShardRecord], *, now: float) -> None:
        """Write these shards' rows (new or changed) and the run's `updated_at`, in one transaction."""

        def write() -> None:
            with self._registry.transaction() as db:
                db.executemany(
                    f"INSERT OR REPLACE INTO run_shards ({_SHARD_COLUMNS}) VALUES ({_marks(_SHARD_COLUMNS)})",
                    [_shard_params(shard) for shard in shards],
                )
                db.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (now, run_id))

        await anyio.to_thread.run_sync(write)

    async def set_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        now: float,
        expected: Sequence[RunStatus],
        errors: Sequence[str] | None = None,
    ) -> RunRecord | None:
        """Move the run to `status` if it is still in one of `expected` (a cancel from another process wins
        over a step that would finish the run); the run as saved, or None when its status had changed."""

        def write() -> RunRecord | None:
            marks = ", ".join("?" for _ in expected)
            with self._registry.transaction() as db:
                cursor = db.execute(
                    f"""UPDATE runs SET status = ?, updated_at = ?, errors = COALESCE(?, errors)
                        WHERE id = ? AND status IN ({marks})""",
                    (status, now, None if errors is None else orjson.dumps(list(errors)).decode(), run_id, *expected),
                )
                if cursor.rowcount != 1:
                    return None
                read = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
                read.row_factory = sqlite3.Row
                return _run(read.fetchone())

        return await anyio.to_thread.run_sync(write)

    async def save_results_summary(self, run_id: str, summary: str) -> None:
        def write() -> None:
            with self._registry.transaction() as db:
                db.execute("UPDATE runs SET results_summary = ? WHERE id = ?", (summary, run_id))

        await anyio.to_thread.run_sync(write)

    async def in_flight(self) -> dict[str, tuple[int, int]]:
        """Per deployment, over every run: the estimated tokens and the number of shards counted against it."""
        rows = await self._read(
            """SELECT deployment, SUM(estimated_tokens) AS tokens, COUNT(*) AS shards FROM run_shards
               WHERE state IN ('creating', 'submitted') AND deployment IS NOT NULL GROUP BY deployment"""
        )
        return {row["deployment"]: (int(row["tokens"]), int(row["shards"])) for row in rows}

    # learned limits

    async def learned_limits(self) -> dict[str, LearnedLimit]:
        rows = await self._read("SELECT deployment, enqueued_limit, message, learned_at FROM learned_limits")
        return {
            row["deployment"]: LearnedLimit(row["deployment"], row["enqueued_limit"], row["message"], row["learned_at"])
            for row in rows
        }

    async def learn_limit(self, limit: LearnedLimit) -> None:
        def write() -> None:
            with self._registry.transaction() as db:
                db.execute(
                    """INSERT OR REPLACE INTO learned_limits (deployment, enqueued_limit, message, learned_at)
                       VALUES (?, ?, ?, ?)""",
                    (limit.deployment, limit.limit, limit.message, limit.learned_at),
                )

        await anyio.to_thread.run_sync(write)

    # leases

    async def take_lease(self, run_id: str, holder: str, *, now: float, ttl: float = RUN_LEASE_SECONDS) -> bool:
        """Take (or renew) the run's lease (`Store.take_leases`)."""
        return run_id in await self._store.take_leases("run", [run_id], holder, ttl=ttl, now=now)

    async def release_lease(self, run_id: str, holder: str) -> None:
        await self._store.release_lease("run", run_id, holder)

    async def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return await anyio.to_thread.run_sync(lambda: self._registry.query(sql, params))
