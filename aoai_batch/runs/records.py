"""Runs, their shards, learned enqueued-token limits and run leases, in the job registry (schema 2 of `store.py`).

Everything a run needs to resume after a restart is here: a shard row names its input range (or its own file of
lines for a retry), its state, its deployment, the attempt whose idempotency key a create is sent under, the
uploaded file and the batch. A change of several rows (a shard collected and its retry shard queued, a shard
split into two) is written in one transaction, so a process killed in between leaves the old rows or the new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from aoai_batch.db import Row
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


# A shard's row, new or replacing the saved one (its run and index are the key)
_SAVE_SHARD = (
    f"INSERT INTO run_shards ({_SHARD_COLUMNS}) VALUES ({_marks(_SHARD_COLUMNS)}) "
    "ON CONFLICT (run_id, shard_index) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in (c.strip() for c in _SHARD_COLUMNS.split(",")[2:]))
)


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


def _run(row: Row) -> RunRecord:
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


def _shard(row: Row) -> ShardRecord:
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
    """The runs tables of the registry, for async code, on either engine (`Store.database`)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._database = store.database

    # runs

    async def create(self, run: RunRecord, shards: Sequence[ShardRecord]) -> RunRecord:
        """Save a new run and its planned shards at once; a run already saved under its key is returned instead
        (the key's lock makes two replicas starting the same run at once find one)."""
        async with self._database.transaction() as db:
            if run.idempotency_key is not None:
                await db.lock(f"run-key:{run.idempotency_key}")
                known = await db.fetch(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE idempotency_key = ?", (run.idempotency_key,)
                )
                if known:
                    return _run(known[0])
            await db.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_marks(_RUN_COLUMNS)})", _run_params(run))
            await db.execute_many(
                f"INSERT INTO run_shards ({_SHARD_COLUMNS}) VALUES ({_marks(_SHARD_COLUMNS)})",
                [_shard_params(shard) for shard in shards],
            )
            return run

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
        async with self._database.transaction() as db:
            await db.execute_many(_SAVE_SHARD, [_shard_params(shard) for shard in shards])
            await db.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (now, run_id))

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
        marks = ", ".join("?" for _ in expected)
        text = None if errors is None else orjson.dumps(list(errors)).decode()
        async with self._database.transaction() as db:
            changed = await db.execute(
                f"""UPDATE runs SET status = ?, updated_at = ?, errors = COALESCE(?, errors)
                    WHERE id = ? AND status IN ({marks})""",
                (status, now, text, run_id, *expected),
            )
            if changed != 1:
                return None
            rows = await db.fetch(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _run(rows[0])

    async def save_results_summary(self, run_id: str, summary: str) -> None:
        async with self._database.transaction() as db:
            await db.execute("UPDATE runs SET results_summary = ? WHERE id = ?", (summary, run_id))

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
        async with self._database.transaction() as db:
            await db.execute(
                """INSERT INTO learned_limits (deployment, enqueued_limit, message, learned_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (deployment) DO UPDATE SET enqueued_limit = excluded.enqueued_limit,
                   message = excluded.message, learned_at = excluded.learned_at""",
                (limit.deployment, limit.limit, limit.message, limit.learned_at),
            )

    # leases

    async def take_lease(self, run_id: str, holder: str, *, now: float, ttl: float = RUN_LEASE_SECONDS) -> bool:
        """Take (or renew) the run's lease (`Store.take_leases`)."""
        return run_id in await self._store.take_leases("run", [run_id], holder, ttl=ttl, now=now)

    async def release_lease(self, run_id: str, holder: str) -> None:
        await self._store.release_lease("run", run_id, holder)

    async def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        return await self._database.fetch(sql, params)
