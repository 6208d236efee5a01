"""`RunService`: start, watch, advance, cancel and fetch runs; what tools, resources and the CLI call.

A run's rows are in the registry (`records.py`) and its files in `home/runs/<run_id>/`. Whoever calls
`advance` (the server's background task, `worker`, a waiting `get_run`) moves it one step (`scheduler.py`),
under the run's lease: two processes on one home never advance one run at once, and the one that cannot
take the lease only reads.

A run belongs to who started it (`identity.current_owner`); a viewer who sees only their own gets NotFound
for anyone else's run, exactly as for one that does not exist. A step acts as the run's owner, so its
shards' uploads and batches are the owner's too, whoever (or whatever background task) advances it.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from aoai_batch.client import Sleep
from aoai_batch.cost import check_max_cost, sum_costs
from aoai_batch.errors import InvalidInput, InvalidRequest, NotReady
from aoai_batch.identity import Viewer, acting_as, current_owner, may_see, restricted
from aoai_batch.leases import new_holder
from aoai_batch.limits import MAX_WAIT_SECONDS
from aoai_batch.models import Cost, EstimatedCost, ProgressFn, RequestCounts
from aoai_batch.owners import run_key, run_not_found, users_run_key
from aoai_batch.runs.ledger import Ledger, smallest_known_limit, waiting_for
from aoai_batch.runs.merge import ShardResults, merge_run_results
from aoai_batch.runs.models import Run, RunPage, RunResultsSummary, ShardView
from aoai_batch.runs.plan import PreparedRun, ShardRange, plan_shards, prepare_run_input
from aoai_batch.runs.pool import ServicePool
from aoai_batch.runs.records import RunLeaseLost, RunRecord, RunRecords, ShardRecord
from aoai_batch.runs.scheduler import RunStep, build_ledger
from aoai_batch.service import BatchService, Clock
from aoai_batch.settings import Settings
from aoai_batch.store import Store

if TYPE_CHECKING:
    import httpx2

OnChange = Callable[[list[Run]], Awaitable[None]]

OPENAI_MAX_REQUESTS = 50_000  # OpenAI's per-batch request limit (Azure's is the settings' 100,000)
SHOWN_SHARDS = 20  # shards listed in a run's view; `shard_counts` counts them all
MAX_RETRIES = 10
MAX_LIST = 100


class RunService:
    """Runs over the main service's resource and the pool's (SPEC §9).

    Every method may raise RegistryLocked (another process held the registry for too long); those that ask a
    service may raise what `BatchService`'s methods raise.
    """

    def __init__(
        self,
        settings: Settings,
        main: BatchService,
        pool: ServicePool,
        store: Store,
        *,
        now: Clock = time.time,
        sleep: Sleep = anyio.sleep,
        owner: str | None = None,
    ) -> None:
        self._settings = settings
        self._main = main
        self._pool = pool
        self._records = RunRecords(store)
        self._store = store
        self._now = now
        self._sleep = sleep
        self._owner = owner or new_holder()
        self._locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)
        self._looked_at: dict[str, float] = {}  # batch id -> when a step last asked the service about it

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        main: BatchService,
        *,
        transport_for: Callable[[str], httpx2.AsyncBaseTransport | None] | None = None,
        now: Clock = time.time,
        sleep: Sleep = anyio.sleep,
    ) -> AsyncIterator[RunService]:
        """The run service beside `main`: its own connection to the same registry, and the pool's services."""
        async with (
            await Store.open_for(settings, now=now) as store,
            ServicePool.open(settings, main, transport_for=transport_for, sleep=sleep, now=now) as pool,
        ):
            yield cls(settings, main, pool, store, now=now, sleep=sleep)

    # starting

    async def start_run(
        self,
        *,
        deployments: Sequence[str],
        prompts: Sequence[str] | None = None,
        requests: Sequence[Mapping[str, Any]] | None = None,
        source_path: Path | None = None,
        batch_path: Path | None = None,
        template: str | None = None,
        system_prompt: str | None = None,
        id_field: str | None = None,
        image_field: str | None = None,
        endpoint: str = "/chat/completions",
        body: Mapping[str, Any] | None = None,
        name: str | None = None,
        retries: int = 1,
        idempotency_key: str | None = None,
        resolve_image: Callable[[str], Path] | None = None,
        max_cost: float | None = None,
    ) -> Run:
        """Validate the whole input, plan its shards and save the run; it is advanced from then on.

        The same `idempotency_key` returns the run it started before (nothing is read or planned again).
        The run's `estimated_cost` is priced at its first deployment's model; with `max_cost`, a run whose
        estimate is above it is refused before anything is saved (`cost.check_max_cost`).

        Raises:
            InvalidInput: no deployments, `retries` outside 0-10, or the inputs are not exactly one source.
            UnknownDeployment: a deployment is neither this resource's nor the pool file's.
            InvalidBatchFile: the input has issues (the message names the first few); nothing is saved.
            CostAboveLimit: the estimate is above `max_cost`, or cannot be made; nothing is saved.
        """
        owner = current_owner()
        saved_key = run_key(idempotency_key, owner) if idempotency_key is not None else None
        if saved_key is not None:
            known = await self._records.find_by_key(saved_key)
            if known is not None:
                return await self._view(known)
        names = list(dict.fromkeys(deployments))
        if not names:
            raise InvalidInput("A run needs at least one deployment (in order of preference).")
        if not 0 <= retries <= MAX_RETRIES:
            raise InvalidInput(f"retries is how many times a failed request is resubmitted: 0 to {MAX_RETRIES}.")
        if max_cost is not None and not 0 <= max_cost < float("inf"):
            raise InvalidInput(f"max_cost must be an amount of 0 or more (it was {max_cost}).")
        entries = [self._pool.lookup(name) for name in names]
        run_id = f"run_{secrets.token_hex(12)}"
        run_dir = self._settings.home / "runs" / run_id
        ledger = await build_ledger(self._records, self._pool, names)
        limits = self._main.file_rules
        max_requests = limits.max_requests
        if self._main.backend == "openai":
            max_requests = min(max_requests, OPENAI_MAX_REQUESTS)

        pricing = self._main.pricing

        def prepare() -> tuple[PreparedRun, list[ShardRange], EstimatedCost]:
            prepared = prepare_run_input(
                run_dir,
                batch_path=batch_path,
                prompts=prompts,
                requests=requests,
                source_path=source_path,
                template=template,
                system_prompt=system_prompt,
                id_field=id_field,
                image_field=image_field,
                endpoint=endpoint,
                body=body,
                deployment=entries[0].deployment,
                resolve_image=resolve_image,
            )
            bound = prepared.validation.max_output_tokens
            estimate = pricing.estimate_run([e.deployment for e in entries], prepared.estimated_input_tokens, bound)
            if max_cost is not None:
                check_max_cost(estimate, max_cost)  # before the shards are planned, and nothing is saved
            ranges = plan_shards(
                prepared.input_path,
                max_requests=max_requests,
                max_bytes=limits.max_bytes,  # plan_shards keeps each shard under 95% of it
                max_tokens=smallest_known_limit(ledger, names),
                deployments=[entry.deployment for entry in entries],
            )
            return prepared, ranges, estimate

        try:
            prepared, ranges, estimate = await anyio.to_thread.run_sync(prepare)
        except BaseException:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(run_dir, ignore_errors=True))
            raise
        now = self._now()
        record = RunRecord(
            id=run_id,
            status="running",
            endpoint=prepared.endpoint,
            deployments=tuple(names),
            retries=retries,
            input_path=str(prepared.input_path),
            requests=prepared.requests,
            estimated_input_tokens=prepared.estimated_input_tokens,
            backend=self._main.backend,
            created_at=now,
            updated_at=now,
            name=name,
            idempotency_key=saved_key,
            source_path=str(prepared.source_path) if prepared.source_path else None,
            estimated_cost=estimate.model_dump_json(),
            owner=owner,
        )
        shards = [
            ShardRecord(
                run_id=run_id,
                index=index,
                kind="input",
                first_line=part.first_line,
                line_count=part.line_count,
                start_byte=part.start_byte,
                end_byte=part.end_byte,
                estimated_tokens=part.estimated_tokens,
                updated_at=now,
            )
            for index, part in enumerate(ranges)
        ]
        saved = await self._records.create(record, shards)
        await self._store.announce("run", saved.id)
        if saved.id != run_id:  # another start under the same key won the race: its run is the one
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(run_dir, ignore_errors=True))
        return await self._view(saved)

    # reading

    async def get_run(self, run_id: str, *, wait_seconds: float = 0, progress: ProgressFn | None = None) -> Run:
        """The run now; with `wait_seconds`, advancing it meanwhile, until it changes or the wait is over.

        Raises:
            NotFound: no run `run_id` in the registry, or it is not the viewer's.
            InvalidInput: `wait_seconds` is outside 0-50.
        """
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise InvalidInput(f"A wait must be between 0 and {MAX_WAIT_SECONDS} seconds (it was {wait_seconds}).")
        first = await self._view(await self._record(run_id))
        if wait_seconds == 0 or first.terminal:
            return first
        start = self._now()
        interval = min(self._main.poll_seconds, 5.0)
        current = first
        while (elapsed := self._now() - start) < wait_seconds:
            if progress is not None:
                await progress(elapsed, wait_seconds, _progress_text(current))
            await self._sleep(min(interval, wait_seconds - elapsed))
            current = await self.advance(run_id)
            if (current.status, current.updated_at) != (first.status, first.updated_at):
                break
        if progress is not None:
            await progress(min(self._now() - start, wait_seconds), wait_seconds, _progress_text(current))
        return current

    async def list_runs(self, *, limit: int = 20, after: str | None = None) -> RunPage:
        """A page of runs (the viewer's own, unless jobs are shared), newest first; `after` is the last run id
        of the previous page.

        Raises:
            InvalidInput: `limit` is outside 1-100.
        """
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be 1 to {MAX_LIST} (it was {limit}).")
        viewer = restricted()
        owner = viewer.owner if viewer is not None else None
        records, more = await self._records.page(limit=limit, after=after, owner=owner)
        runs = [await self._view(record) for record in records]
        return RunPage(runs=runs, has_more=more, last_id=runs[-1].id if runs else None)

    async def owner_of(self, run_id: str) -> str | None:
        """Who started the run (None: no one signed in, or no such run), whoever asks."""
        record = await self._records.get(run_id)
        return record.owner if record is not None else None

    async def active_runs(self) -> list[Run]:
        """The runs not yet terminal (that the viewer may see), oldest first."""
        return [await self._view(record) for record in await self._records.active() if may_see(record.owner)]

    async def results_summary(self, run_id: str) -> RunResultsSummary | None:
        """The summary of the last `fetch_run_results` of the run; None before one.

        Raises:
            NotFound: no run `run_id` in the registry, or it is not the viewer's.
        """
        record = await self._record(run_id)
        if record.results_summary is None:
            return None
        return RunResultsSummary.model_validate_json(record.results_summary)

    # acting

    async def cancel_run(self, run_id: str) -> Run:
        """Submit no more shards and cancel the running ones' batches; finished work is kept.

        Raises:
            NotFound: no run `run_id` in the registry, or it is not the viewer's.
            InvalidRequest: the run has already ended (`code="run_not_cancellable"`).
        """
        record = await self._record(run_id)
        if record.terminal:
            raise InvalidRequest(
                f"Run {run_id} is already {record.status}; only a run that is still going can be cancelled.",
                code="run_not_cancellable",
            )
        if record.status == "running":
            saved = await self._records.set_status(run_id, "cancelling", now=self._now(), expected=["running"])
            if saved is None:  # it finished meanwhile
                return await self.cancel_run(run_id)
        return await self.advance(run_id)

    async def fetch_run_results(
        self,
        run_id: str,
        *,
        output_dir: Path,
        format: Literal["jsonl", "csv"] = "jsonl",
        preview: int = 3,
        overwrite: bool = False,
        progress: ProgressFn | None = None,
    ) -> RunResultsSummary:
        """One results file over every shard and retry, one row per input request in input order.

        Raises:
            NotFound: no run `run_id` in the registry, or it is not the viewer's.
            NotReady: the run is still going.
            FileInTheWay: a results file exists and `overwrite` is false.
            NotWritable, NoSpace: `output_dir` cannot be written (nothing half-written is left).
        """
        record = await self._record(run_id)
        if not record.terminal:
            raise NotReady(f"Run {run_id} is still {record.status}; fetch its results once it has ended.")
        parts = _result_parts(await self._records.shards(run_id))
        if progress is not None:
            await progress(0, len(parts), f"merging the results of {len(parts)} shards of {run_id}")
        summary = await anyio.to_thread.run_sync(
            lambda: merge_run_results(
                parts,
                input_path=Path(record.input_path),
                source_path=Path(record.source_path) if record.source_path else None,
                output_dir=Path(output_dir),
                format=format,
                preview=preview,
                overwrite=overwrite,
                run_id=run_id,
                run_status=record.status,
            )
        )
        summary.cost = await self._cost(record.id)
        await self._records.save_results_summary(run_id, summary.model_dump_json())
        if progress is not None:
            await progress(len(parts), len(parts), f"wrote {summary.results_path}")
        return summary

    async def advance(self, run_id: str) -> Run:
        """One step of the run (`scheduler.RunStep`), under its lease; only a read while another process has it.
        The step acts as the run's owner.

        Raises:
            NotFound: no run `run_id` in the registry (or it is not the viewer's).
        """
        record = await self._record(run_id)
        with acting_as(Viewer(record.owner) if record.owner is not None else None):
            return await self._step(run_id)

    async def _step(self, run_id: str) -> Run:
        async with self._locks[run_id]:
            record = await self._record(run_id)
            if record.terminal or not await self._take(run_id):
                return await self._view(record)
            try:
                record = await self._record(run_id)  # as it is now that no one else changes it
                step = RunStep(
                    self._records,
                    self._pool,
                    record,
                    self._now,
                    lambda: self._renew(run_id),
                    poll_seconds=self._main.poll_seconds,
                    looked_at=self._looked_at,
                )
                record = await step.advance()
                if step.changed:
                    await self._store.announce("run", run_id)  # the other replicas tell their subscribers
            except RunLeaseLost:
                record = await self._record(run_id)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._records.release_lease(run_id, self._owner)
            return await self._view(record)

    async def advance_all(self) -> list[Run]:
        """One step of every active run; the runs that changed."""
        return [run for run, changed in await self.advance_active() if changed]

    async def advance_active(self) -> list[tuple[Run, bool]]:
        """One step of every active run (a run another process holds is only read); each run as it is after,
        and whether it changed since the step began."""
        stepped: list[tuple[Run, bool]] = []
        for record in await self._records.active():
            run = await self.advance(record.id)
            stepped.append((run, (run.status, run.updated_at) != (record.status, _when(record.updated_at))))
        return stepped

    async def work(self, *, forever: bool = False, on_change: OnChange | None = None) -> None:
        """Advance every active run until none is left (`forever`: keep looking for new ones)."""
        while True:
            changed = await self.advance_all()
            if changed and on_change is not None:
                await on_change(changed)
            if not forever and not await self._records.active():
                return
            await self._sleep(self._main.poll_seconds)

    # helpers

    async def _cost(self, run_id: str) -> Cost:
        """What the run cost: the sum of its collected shards' costs (each priced, when its results were
        fetched, from the usage its output lines report, cached tokens at their price)."""
        costs: list[Cost] = []
        for shard in await self._records.shards(run_id):
            fetched = await self._store.results_summary(shard.batch_id) if shard.batch_id else None
            if shard.state == "done" and fetched is not None and fetched.cost is not None:
                costs.append(fetched.cost)
        return sum_costs(costs)

    async def _take(self, run_id: str) -> bool:
        return await self._records.take_lease(run_id, self._owner, now=self._now())

    async def _renew(self, run_id: str) -> None:
        if not await self._take(run_id):
            raise RunLeaseLost(f"another process took run {run_id} over")

    async def _record(self, run_id: str) -> RunRecord:
        """The run, when the viewer may see it; NotFound otherwise, the same as for a run that does not exist."""
        record = await self._records.get(run_id)
        if record is None or not may_see(record.owner):
            raise run_not_found(run_id)
        return record

    async def _view(self, record: RunRecord) -> Run:
        shards = await self._records.shards(record.id)
        ledger = await build_ledger(self._records, self._pool, record.deployments)
        return run_view(record, shards, ledger, now=self._now())


def run_view(record: RunRecord, shards: Sequence[ShardRecord], ledger: Ledger, *, now: float) -> Run:
    """What users see of a run: counts over its shards, the first shards, the ledger, what it waits for."""
    completed = sum(shard.request_counts.completed for shard in shards)
    failed = sum(shard.request_counts.failed for shard in shards)
    failed -= sum(shard.line_count for shard in shards if shard.kind == "retry" and shard.state == "done")
    failed = max(0, min(failed, record.requests - completed))
    counts: defaultdict[str, int] = defaultdict(int)
    for shard in shards:
        counts[shard.state] += 1
    done = completed + failed
    percent = (
        100.0 if record.status == "completed" else round(100.0 * done / record.requests, 1) if record.requests else 0.0
    )
    summary = RunResultsSummary.model_validate_json(record.results_summary) if record.results_summary else None
    return Run(
        id=record.id,
        name=record.name,
        status=record.status,
        terminal=record.terminal,
        created_at=_when(record.created_at),
        updated_at=_when(record.updated_at),
        endpoint=record.endpoint,
        deployments=list(record.deployments),
        retries=record.retries,
        idempotency_key=users_run_key(record.idempotency_key, record.owner),
        input_path=record.input_path,
        source_path=record.source_path,
        requests=record.requests,
        estimated_input_tokens=record.estimated_input_tokens,
        estimated_cost=EstimatedCost.model_validate_json(record.estimated_cost) if record.estimated_cost else None,
        request_counts=RequestCounts(total=record.requests, completed=completed, failed=failed),
        progress_percent=min(percent, 100.0),
        shard_counts=dict(counts),
        shards=[_shard_view(shard) for shard in shards[:SHOWN_SHARDS]],
        ledger=[ledger.load(name) for name in record.deployments],
        waiting_for=None if record.terminal else waiting_for(shards, ledger, record.deployments, now=now),
        results_path=summary.results_path if summary else None,
        errors=list(record.errors),
        backend=record.backend,
    )


def _result_parts(shards: Sequence[ShardRecord]) -> list[ShardResults]:
    """The collected shards, as merge reads them: input shards in input order, then retries in the order made."""
    collected = [shard for shard in shards if shard.state == "done" and shard.results_path and shard.batch_id]
    ordered = sorted(
        collected, key=lambda shard: (shard.kind != "input", shard.first_line if shard.kind == "input" else shard.index)
    )
    return [
        ShardResults(
            kind=shard.kind,
            results_path=Path(shard.results_path or ""),
            errors_path=Path(shard.errors_path) if shard.errors_path else None,
            batch_id=shard.batch_id or "",
            attempt=shard.request_attempt,
            first_line=shard.first_line,
        )
        for shard in ordered
    ]


def _shard_view(shard: ShardRecord) -> ShardView:
    return ShardView(
        index=shard.index,
        kind=shard.kind,
        requests=shard.line_count,
        estimated_tokens=shard.estimated_tokens,
        deployment=shard.deployment,
        attempt=shard.attempt,
        state=shard.state,
        batch_id=shard.batch_id,
        batch_status=shard.batch_status,
        request_counts=shard.request_counts,
        next_try_at=_when(shard.next_try_at) if shard.next_try_at is not None else None,
        error=shard.error,
    )


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _progress_text(run: Run) -> str:
    counts = run.request_counts
    text = f"{run.id} is {run.status} ({counts.completed + counts.failed}/{run.requests} requests done)"
    return f"{text}; {run.waiting_for}" if run.waiting_for else text
