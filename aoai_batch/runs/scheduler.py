"""One step of a run: look at its batches, collect the finished ones, queue retries, submit what fits.

Every state change is written to the registry before the action it announces, so a step killed at any point
is resumed by the next one: `uploading` uploads again (a spare file is harmless), `creating` creates again
under the same idempotency key (`BatchService.create_batch` finds the batch a lost answer had created: the
registry first, then the service's own list), `collecting` fetches again (overwriting its own files). No
batch is created twice for one shard attempt.

Quota: a shard goes to the first of the run's deployments where it fits (`ledger.Ledger.fits`), else waits.
Azure answers a shortage in two ways, both handled alike: the create is refused (`InvalidRequest` with code
`token_limit_exceeded`, "fail fast"), or the batch is accepted and then `failed` in validation with that code.
The shard goes back to `queued`, keeping its uploaded file, with `next_try_at` after an exponential backoff
with jitter (capped); a limit the message names is learned. A shard the learned limits can never fit is split.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from aoai_batch.errors import BatchToolError, InvalidRequest, NotFound
from aoai_batch.leases import RUN_METADATA_KEY
from aoai_batch.models import Batch
from aoai_batch.quota import TOKEN_LIMIT_EXCEEDED, limit_named_in
from aoai_batch.runs.ledger import Ledger, effective_limit
from aoai_batch.runs.models import RunStatus, ShardState
from aoai_batch.runs.plan import ShardRange, plan_shards, write_shard
from aoai_batch.runs.pool import PoolDeployment
from aoai_batch.runs.records import LearnedLimit, RunRecord, RunRecords, ShardRecord
from aoai_batch.runs.retry import write_retry_shard
from aoai_batch.service import TRANSIENT_ERRORS, BatchService

BACKOFF_BASE_SECONDS = 60.0  # the first wait after a quota refusal; doubled at each refusal in a row
BACKOFF_CAP_SECONDS = 1800.0
SHARD_DONE: frozenset[ShardState] = frozenset({"done", "failed", "cancelled"})
SENDING: frozenset[ShardState] = frozenset({"uploading", "uploaded", "creating"})


class DeploymentPool(Protocol):
    """What a step needs of `runs.pool.ServicePool`."""

    def lookup(self, name: str) -> PoolDeployment: ...

    def service(self, name: str) -> BatchService: ...


def idempotency_key(run_id: str, shard: ShardRecord) -> str:
    return f"{run_id}-s{shard.index}-a{shard.attempt}"


def backoff_seconds(refusals: int, draw: float) -> float:
    """The wait after the `refusals`-th quota refusal in a row (0-based): exponential, capped, with jitter in
    [half, all] of it so that shards refused together do not all come back at once."""
    full = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(refusals, 30))
    return full * (0.5 + 0.5 * draw)


async def build_ledger(records: RunRecords, pool: DeploymentPool, deployments: Sequence[str]) -> Ledger:
    learned = await records.learned_limits()
    limits = {}
    for name in deployments:
        entry = pool.lookup(name)
        limits[name] = effective_limit(entry.enqueued_tokens, entry.limit_source, learned.get(name))
    return Ledger(limits, await records.in_flight())


@dataclass
class RunStep:
    """One step of one run, under its lease (`renew` pushes the lease back; it raises if it was lost)."""

    records: RunRecords
    pool: DeploymentPool
    run: RunRecord
    now: Callable[[], float]
    renew: Callable[[], Awaitable[None]]
    random: random.Random = field(default_factory=random.Random)
    changed: bool = False
    shards: dict[int, ShardRecord] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # deployments that refused for quota in this step
    poll_seconds: float = 0.0  # a running batch is asked about at most this often...
    looked_at: dict[str, float] = field(default_factory=dict)  # ...by batch id, when last (kept across steps)

    @property
    def run_dir(self) -> Path:
        return Path(self.run.input_path).parent

    async def advance(self) -> RunRecord:
        """Do what can be done now; returns the run as saved."""
        self.shards = {shard.index: shard for shard in await self.records.shards(self.run.id)}
        for shard in list(self.shards.values()):
            try:
                await self._follow(shard)
            except TRANSIENT_ERRORS:
                break  # the service is unreachable or busy: the next step tries again
            except BatchToolError as exc:  # e.g. a batch the service no longer knows: said, and looked at again
                await self._save(replace(self.shards[shard.index], error=_error_text(exc)))
        if self.run.status == "cancelling":
            await self._cancel_rest()
        elif not any(shard.state == "failed" for shard in self.shards.values()):
            with contextlib.suppress(*TRANSIENT_ERRORS):  # the service is busy: the next step tries again
                await self._submit_queued()
        await self._finish()
        return self.run

    # the shards already under way

    async def _follow(self, shard: ShardRecord) -> None:
        if shard.state in SENDING:
            if self.run.status == "cancelling" and shard.state != "creating":
                await self._save(replace(shard, state="cancelled", error="cancelled before it was submitted"))
                return
            assert shard.deployment is not None
            await self._send(shard, shard.deployment)
        elif shard.state == "submitted":
            assert shard.batch_id is not None
            assert shard.deployment is not None
            if self.now() - self.looked_at.get(shard.batch_id, float("-inf")) < self.poll_seconds:
                return  # asked a moment ago (a waiting get_run steps often): spare the service
            self.looked_at[shard.batch_id] = self.now()
            batch = await self.pool.service(shard.deployment).get_batch(shard.batch_id)
            await self._observe(shard, batch)
        elif shard.state == "collecting":
            await self._collect(shard)

    async def _observe(self, shard: ShardRecord, batch: Batch) -> None:
        refusal = next((error for error in batch.errors if error.code == TOKEN_LIMIT_EXCEEDED), None)
        if batch.status == "failed" and refusal is not None:
            await self._refused(shard, refusal.message or TOKEN_LIMIT_EXCEEDED)
            return
        seen = replace(shard, batch_status=batch.status, request_counts=batch.request_counts)
        if not batch.terminal:
            if (seen.batch_status, seen.request_counts) != (shard.batch_status, shard.request_counts):
                await self._save(seen)
            return
        error = None
        if batch.status == "failed":
            error = "; ".join(f"{e.code}: {e.message}" for e in batch.errors) or "the batch failed"
        await self._collect(await self._save(replace(seen, state="collecting", error=error)))

    async def _collect(self, shard: ShardRecord) -> None:
        assert shard.batch_id is not None
        assert shard.deployment is not None
        folder = self.run_dir / f"shard-{shard.index:04d}-a{shard.attempt}"
        try:
            summary = await self.pool.service(shard.deployment).fetch_results(
                shard.batch_id, output_dir=folder, format="jsonl", preview=0, overwrite=True
            )
        except NotFound as exc:  # its output is gone from the service (expired): its requests stay missing
            await self._save(replace(shard, state="done", error=_error_text(exc)))
            return
        done = replace(shard, state="done", results_path=summary.results_path, errors_path=summary.errors_path)
        retry = await self._retry_shard(done) if summary.results_path else None
        await self._save(done, *([retry] if retry else []))

    async def _retry_shard(self, shard: ShardRecord) -> ShardRecord | None:
        """The shard's requests that failed for a retryable cause, as a new queued shard (None if none, or no
        retries are left, or the run is being cancelled)."""
        if shard.request_attempt > self.run.retries or self.run.status == "cancelling":
            return None
        assert shard.results_path is not None
        assert shard.upload_path is not None
        assert shard.deployment is not None
        index = self._next_index()
        dest = self.run_dir / f"retry-{index:04d}.jsonl"
        written = await anyio.to_thread.run_sync(
            lambda: write_retry_shard(
                Path(shard.results_path or ""),
                Path(shard.upload_path or ""),
                dest,
                batch_status=shard.batch_status or "completed",
                cancelled_by_user=False,
                deployment=self.pool.lookup(shard.deployment or "").deployment,
            )
        )
        if written is None:
            return None
        return ShardRecord(
            run_id=self.run.id,
            index=index,
            kind="retry",
            first_line=0,
            line_count=written.requests,
            start_byte=0,
            end_byte=written.bytes,
            estimated_tokens=written.estimated_tokens,
            lines_path=str(written.path),
            request_attempt=shard.request_attempt + 1,
            parent=shard.index,
        )

    # submitting

    async def _submit_queued(self) -> None:
        queued = sorted((s for s in self.shards.values() if s.state == "queued"), key=lambda s: s.index)
        for shard in queued:
            if any(other.state == "failed" for other in self.shards.values()):
                break  # the run fails once what is in flight has ended: nothing more is sent
            if shard.next_try_at is not None and shard.next_try_at > self.now():
                continue
            ledger = await build_ledger(self.records, self.pool, self.run.deployments)
            names = [name for name in self.run.deployments if name not in self.refused]
            target = next((name for name in names if ledger.fits(name, shard.estimated_tokens)), None)
            if target is None:
                if not any(ledger.can_ever_fit(name, shard.estimated_tokens) for name in self.run.deployments):
                    await self._split(shard, ledger)
                    continue
                break  # the next shards wait behind this one
            await self._send(shard, target)

    async def _send(self, shard: ShardRecord, name: str) -> ShardRecord:
        """Upload (unless a file naming this deployment is already up) and create; resumes where a step stopped."""
        service = self.pool.service(name)
        if shard.state == "queued" and (shard.file_id is None or shard.file_deployment != name):
            shard = await self._save(replace(shard, state="uploading", deployment=name))
        if shard.state == "uploading":
            shard = await self._upload(shard, name, service)
            if shard.state != "uploaded":
                return shard
        if shard.state in ("queued", "uploaded"):
            shard = await self._save(
                replace(shard, state="creating", deployment=name, attempt=shard.attempt + 1, next_try_at=None)
            )
        return await self._create(shard, service)

    async def _upload(self, shard: ShardRecord, name: str, service: BatchService) -> ShardRecord:
        path = self.run_dir / f"shard-{shard.index:04d}-a{shard.attempt + 1}.jsonl"
        source = Path(shard.lines_path or self.run.input_path)
        extent = ShardRange(
            shard.first_line, shard.line_count, shard.start_byte, shard.end_byte, shard.estimated_tokens
        )
        deployment = self.pool.lookup(name).deployment
        try:
            await anyio.to_thread.run_sync(lambda: write_shard(source, extent, path, deployment=deployment))
            uploaded = await service.upload_file(path, validate=False, wait=True)
        except TRANSIENT_ERRORS:
            raise
        except BatchToolError as exc:  # the run's input changed or is gone, or the service refused the file
            return await self._save(replace(shard, state="failed", error=_error_text(exc)))
        return await self._save(
            replace(shard, state="uploaded", upload_path=str(path), file_id=uploaded.file.id, file_deployment=name)
        )

    async def _create(self, shard: ShardRecord, service: BatchService) -> ShardRecord:
        assert shard.file_id is not None
        try:
            batch = await service.create_batch(
                shard.file_id,
                endpoint=self.run.endpoint,
                metadata={RUN_METADATA_KEY: self.run.id, "shard": str(shard.index)},
                idempotency_key=idempotency_key(self.run.id, shard),
            )
        except InvalidRequest as exc:
            if exc.code == TOKEN_LIMIT_EXCEEDED:
                return await self._refused(shard, str(exc))
            return await self._save(replace(shard, state="failed", error=_error_text(exc)))
        except NotFound:
            # the uploaded file is gone (expired, deleted): upload again at the next try
            return await self._save(replace(shard, state="queued", file_id=None, file_deployment=None))
        submitted = await self._save(
            replace(shard, state="submitted", batch_id=batch.id, batch_status=batch.status, error=None)
        )
        if batch.terminal:
            await self._observe(submitted, batch)
        return self.shards[shard.index]

    async def _refused(self, shard: ShardRecord, message: str) -> ShardRecord:
        """A quota refusal (at create, or in validation): learn the limit it names, back off, queue again."""
        assert shard.deployment is not None
        self.refused.add(shard.deployment)
        limit = limit_named_in(message)
        if limit is not None:
            await self.records.learn_limit(LearnedLimit(shard.deployment, limit, message, self.now()))
        wait = backoff_seconds(shard.refusals, self.random.random())
        return await self._save(
            replace(
                shard,
                state="queued",
                refusals=shard.refusals + 1,
                next_try_at=self.now() + wait,
                batch_id=None,
                batch_status=None,
                error=f"{TOKEN_LIMIT_EXCEEDED}: {message}",
            )
        )

    async def _split(self, shard: ShardRecord, ledger: Ledger) -> None:
        """Replace a shard no deployment's limit can ever hold by shards that fit the largest limit."""
        limits = [ledger.limit(name).tokens for name in self.run.deployments]
        largest = max(limit for limit in limits if limit is not None)
        parts = (
            await anyio.to_thread.run_sync(lambda: self._plan_range(shard, largest)) if shard.kind == "input" else []
        )
        if len(parts) < 2:
            await self._save(
                replace(
                    shard,
                    state="failed",
                    error=f"{TOKEN_LIMIT_EXCEEDED}: its requests ({shard.estimated_tokens} estimated tokens) cannot be "
                    f"split to fit the enqueued-token limit of {largest}",
                )
            )
            return
        first = self._next_index()
        children = [
            ShardRecord(
                run_id=self.run.id,
                index=first + n,
                kind="input",
                first_line=part.first_line,
                line_count=part.line_count,
                start_byte=part.start_byte,
                end_byte=part.end_byte,
                estimated_tokens=part.estimated_tokens,
                parent=shard.index,
            )
            for n, part in enumerate(parts)
        ]
        note = f"split: into shards {first}-{first + len(parts) - 1} to fit the enqueued-token limit of {largest}"
        await self._save(replace(shard, state="cancelled", error=note), *children)

    def _plan_range(self, shard: ShardRecord, max_tokens: int) -> list[ShardRange]:
        """The shard's range planned again under `max_tokens` (through a scratch copy of its lines)."""
        scratch = self.run_dir / f".split-{shard.index:04d}.jsonl"
        with Path(self.run.input_path).open("rb") as source:
            source.seek(shard.start_byte)
            scratch.write_bytes(source.read(shard.end_byte - shard.start_byte))
        try:
            parts = plan_shards(scratch, max_requests=shard.line_count, max_bytes=1 << 62, max_tokens=max_tokens)
        finally:
            scratch.unlink()
        return [
            ShardRange(
                shard.first_line + part.first_line,
                part.line_count,
                shard.start_byte + part.start_byte,
                shard.start_byte + part.end_byte,
                part.estimated_tokens,
            )
            for part in parts
        ]

    # cancelling and finishing

    async def _cancel_rest(self) -> None:
        for shard in list(self.shards.values()):
            if shard.state == "queued":
                await self._save(replace(shard, state="cancelled", error="cancelled with the run"))
            elif shard.state == "submitted" and shard.batch_status not in ("cancelling", "cancelled"):
                assert shard.batch_id is not None
                assert shard.deployment is not None
                try:
                    batch = await self.pool.service(shard.deployment).cancel_batch(shard.batch_id)
                except InvalidRequest:
                    continue  # it finished meanwhile: collected at the next look
                except TRANSIENT_ERRORS:
                    break
                await self._observe(shard, batch)

    async def _finish(self) -> None:
        shards = list(self.shards.values())
        if any(shard.state not in SHARD_DONE for shard in shards if shard.state != "queued"):
            return  # batches still under way
        queued = [shard for shard in shards if shard.state == "queued"]
        failed = [shard for shard in shards if shard.state == "failed"]
        if self.run.status == "cancelling":
            await self._set_run("cancelled")
        elif failed:
            for shard in queued:
                await self._save(replace(shard, state="cancelled", error="not submitted: the run failed"))
            errors = tuple(f"shard {shard.index}: {shard.error}" for shard in failed)
            await self._set_run("failed", errors=errors)
        elif not queued:
            await self._set_run("completed")

    # saving

    def _next_index(self) -> int:
        return max(self.shards, default=-1) + 1

    async def _save(self, shard: ShardRecord, *new: ShardRecord) -> ShardRecord:
        """Write the shard's new state (and shards it gave rise to) before going on; renews the run's lease."""
        await self.renew()
        now = self.now()
        rows = [replace(row, updated_at=now) for row in (shard, *new)]
        await self.records.save_shards(self.run.id, rows, now=now)
        self.run = replace(self.run, updated_at=now)
        for row in rows:
            self.shards[row.index] = row
        self.changed = True
        return rows[0]

    async def _set_run(self, status: RunStatus, *, errors: Sequence[str] | None = None) -> None:
        await self.renew()
        saved = await self.records.set_status(
            self.run.id, status, now=self.now(), expected=[self.run.status], errors=errors
        )
        if saved is not None:  # else another process cancelled it meanwhile: the next step sees to it
            self.run = saved
            self.changed = True


def _error_text(exc: BatchToolError) -> str:
    code = getattr(exc, "code", None) or type(exc).__name__
    return f"{code}: {exc}"
