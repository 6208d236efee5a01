"""`BatchService`: the client, the registry and the pure core together; what MCP tools and the CLI call.

Its contract: parameters after the id are keyword-only; every public method lists what it raises (leaves of
`aoai_batch.errors`); its parts (settings, client, registry) are its own, and callers get what they need from
`backend`, `file_rules` and `poll_seconds`. Methods named `registry_*` read the local registry first.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.to_thread

from aoai_batch.client import (
    IDEMPOTENCY_METADATA_KEY,
    AsyncCredential,
    BatchClient,
    Connection,
    Sleep,
    connection_from_settings,
    emulator_connection,
)
from aoai_batch.cost import Pricing, check_max_cost, pricing_for
from aoai_batch.errors import (
    BatchToolError,
    ConnectionFailed,
    InvalidInput,
    InvalidRequest,
    RateLimited,
    ServiceUnavailable,
)
from aoai_batch.identity import current_owner, restricted
from aoai_batch.leases import batch_lease_seconds, is_run_shard, new_holder
from aoai_batch.limits import (
    COMPLETION_WINDOWS,
    DEFAULT_COMPLETION_WINDOW,
    MAX_FILE_EXPIRY_DAYS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_WAIT_SECONDS,
    MIN_FILE_EXPIRY_DAYS,
    FileRules,
)
from aoai_batch.models import (
    Backend,
    Batch,
    BatchPage,
    EstimatedCost,
    FetchSummary,
    FileInfo,
    FilePage,
    ProgressFn,
    UploadResult,
)
from aoai_batch.owners import check_batch, check_file, own_page, service_key
from aoai_batch.results import fetch
from aoai_batch.service_checks import check_endpoint, check_input_file_id, check_metadata, invalid_file_error
from aoai_batch.settings import Settings, file_rules
from aoai_batch.store import BatchRecord, Store
from aoai_batch.validation import validate_file

if TYPE_CHECKING:
    import httpx2

Clock = Callable[[], float]

# The longest pause between two looks at an upload being processed: the emulator processes at once.
FILE_POLL_SECONDS: dict[Backend, float] = {"azure": 3.0, "openai": 3.0, "emulator": 1.0}
# Errors after which a snapshot is still worth showing: the service is unreachable or busy, not wrong.
TRANSIENT_ERRORS = (ConnectionFailed, ServiceUnavailable, RateLimited)


class BatchService:
    """Upload, create, watch, cancel and fetch batches; every batch seen is kept in the registry.

    Every method that asks the service may raise, besides what its own docstring names:
    AuthenticationFailed (SignInFailed: no Entra ID token) when the credentials are refused, RateLimited
    when a quota or rate limit is reached, ServiceUnavailable on a server error, ConnectionFailed when the
    service cannot be reached, and RegistryLocked when another process holds the registry for too long.

    Each call runs as the current viewer (`identity.acting_as`): what it uploads and creates is recorded
    under the viewer's owner id, and a viewer who sees only their own jobs gets NotFound for anyone else's
    batch or file (`owners.check_batch`), exactly as for one that does not exist, and listings of their own.
    """

    def __init__(
        self,
        settings: Settings,
        client: BatchClient,
        store: Store,
        *,
        rules: FileRules,
        pricing: Pricing | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
        now: Clock = time.time,
        resource: str | None = None,
        holder: str | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._store = store
        self._rules = rules
        self._resource = resource
        self._pricing = pricing or pricing_for(settings)
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._create_locks: defaultdict[tuple[str | None, str], anyio.Lock] = defaultdict(anyio.Lock)
        self._holder = holder or new_holder()  # this service's name in the batch leases it takes (`refresh_active`)
        self._leased: set[str] = set()  # the batches whose lease it holds

    @property
    def backend(self) -> Backend:
        """The service this one talks to: `azure`, `openai` or `emulator`."""
        return self._client.backend

    @property
    def file_rules(self) -> FileRules:
        """What build, validate and upload check a batch file against (the deployments: None when not known)."""
        return self._rules

    @property
    def pricing(self) -> Pricing:
        """The price book and the deployments' models: what estimates and costs are priced with."""
        return self._pricing

    @property
    def poll_seconds(self) -> float:
        """How often to ask about a running batch (`AOAI_BATCH_POLL_SECONDS`; never under 60 s on Azure)."""
        return self._settings.poll_seconds

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        transport: httpx2.AsyncBaseTransport | None = None,
        *,
        credential: AsyncCredential | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
        now: Clock = time.time,
        store: Store | None = None,
        resource: str | None = None,
    ) -> AsyncIterator[BatchService]:
        """Open the registry and the client; with the emulator provider and no transport, run it in-process.

        `store`: a registry already open (its owner closes it), for services of several resources sharing one
        registry (`runs.pool`). `resource`: the endpoint of such another resource; its batches carry it, and a
        service of another resource neither refreshes them nor polls them (None: this server's own resource).

        Raises:
            NotConfigured: the backend needs a setting that is not set (an endpoint, a key).
            BadPriceFile: the price file AOAI_BATCH_PRICES names cannot be read, or an entry is wrong.
            NotWritable: the registry's folder (`AOAI_BATCH_HOME`) cannot be written.
            RegistryLocked: another process held the registry's lock past its timeout.
        """
        pricing = pricing_for(settings)
        async with AsyncExitStack() as stack:
            if store is None:
                store = await Store.open_for(settings, now=now)
                stack.push_async_callback(store.close)
            if settings.embedded_emulator:
                connection, transport = await _embedded_emulator(settings, transport, stack)
            else:
                connection = connection_from_settings(settings)
            client = BatchClient(
                connection,
                transport=transport,
                credential=credential,
                sleep=sleep,
                poll_seconds=FILE_POLL_SECONDS[connection.backend],
            )
            stack.push_async_callback(client.aclose)
            rules = file_rules(settings)
            service = cls(
                settings,
                client,
                store,
                rules=rules,
                pricing=pricing,
                sleep=sleep,
                clock=clock,
                now=now,
                resource=resource,
            )
            stack.push_async_callback(service.release_leases)  # before the registry closes: stacks unwind in reverse
            yield service

    # files

    async def upload_file(
        self,
        path: Path,
        *,
        validate: bool = True,
        expires_after_days: int | None = None,
        wait: bool = True,
        progress: ProgressFn | None = None,
    ) -> UploadResult:
        """Check the file (unless told not to), upload it streamed from disk, and wait until it is processed.

        `expires_after_days` defaults to `AOAI_BATCH_FILE_EXPIRY_DAYS`. Nothing is uploaded unless the file passes.

        Raises:
            InvalidInput: `path` is not a file, or `expires_after_days` is outside 14-30.
            InvalidBatchFile: the file has issues (`file_rules`); the message names the first few.
            UnknownDeployment: the file's deployment is not one of `file_rules.deployments`.
            NotReady: `wait` and the service had not processed the file by the end of the wait.
            InvalidRequest: the service refused the upload or failed to process the file (its `code`).
        """
        path = await anyio.to_thread.run_sync(_existing_file, Path(path))
        if expires_after_days is not None and not MIN_FILE_EXPIRY_DAYS <= expires_after_days <= MAX_FILE_EXPIRY_DAYS:
            raise InvalidInput(
                f"A file expires after {MIN_FILE_EXPIRY_DAYS} to {MAX_FILE_EXPIRY_DAYS} days, as on Azure "
                f"(it was {expires_after_days})."
            )
        report = None
        if validate:
            report = await anyio.to_thread.run_sync(
                lambda: validate_file(
                    path,
                    **self._rules.keywords(),
                    exact_tokens=False,  # a characters estimate: the tokenizer's tables would double the memory
                )
            )
            if not report.ok:
                raise invalid_file_error(path, report, self._rules.deployments)
            report = self._pricing.priced_report(report)
        days = expires_after_days or self._settings.file_expiry_days
        info = await self._client.upload_file(path, expires_after_days=days, wait=wait, progress=progress)
        await self._store.save_file(info, local_path=str(path), owner=current_owner())
        return UploadResult(file=info, validation=report, estimated_cost=report.estimated_cost if report else None)

    async def get_file(self, file_id: str) -> FileInfo:
        """An uploaded file's metadata, as the service reports it now (kept in the registry).

        Raises:
            InvalidInput: `file_id` is empty.
            NotFound: the service has no such file, or it is not the viewer's (`missing="file"`).
        """
        await check_file(self._store, file_id)
        info = await self._client.get_file(file_id)
        await self._store.save_file(info)
        return info

    async def list_files(self, *, limit: int = 20, after: str | None = None, purpose: str | None = None) -> FilePage:
        """A page of the service's uploaded files, newest first; a viewer who sees only their own gets those of
        the page they uploaded (so a page may hold fewer than `limit`; `last_id` and `has_more` page on).

        Raises:
            InvalidInput: `limit` is outside 1-100.
            InvalidRequest: the service refused the listing (e.g. an `after` it does not know).
        """
        page = await self._client.list_files(limit=limit, after=after, purpose=purpose)
        viewer = restricted()
        if viewer is None:
            return page
        mine = [info for info in page.files if await self._uploaded_by(info.id, viewer.owner)]
        return page.model_copy(update={"files": mine})

    async def _uploaded_by(self, file_id: str, owner: str) -> bool:
        record = await self._store.get_file(file_id)
        return record is not None and record.owner == owner

    # batches

    async def create_batch(
        self,
        input_file_id: str,
        *,
        endpoint: str = "/chat/completions",
        completion_window: str = DEFAULT_COMPLETION_WINDOW,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        max_cost: float | None = None,
    ) -> Batch:
        """Start a batch; the same idempotency key returns the batch it created before, never a second one.

        With `max_cost`, the input file is estimated first (the local copy this server uploaded, else the
        service's) and nothing starts when the estimate is above it (`cost.check_max_cost`).

        Raises:
            NotAFileId: `input_file_id` is a local path or a batch id (refused before any request).
            InvalidInput: an unknown endpoint or completion window, metadata beyond Azure's limits (or using the
                reserved key), an empty or too long `idempotency_key`, or an empty `input_file_id`.
            NotFound: the service has no file `input_file_id`, or it is not the viewer's.
            InvalidRequest: the service refused the batch (its `code`, e.g. `token_limit_exceeded`).
            CostAboveLimit: the estimate is above `max_cost`, or cannot be made (an unknown model or price).
        """
        folders = [Path.cwd(), *self._settings.workspace_dirs]
        await anyio.to_thread.run_sync(check_input_file_id, input_file_id, folders)
        endpoint = check_endpoint(endpoint)
        if completion_window not in COMPLETION_WINDOWS:
            raise InvalidInput(f"The completion window must be one of {sorted(COMPLETION_WINDOWS)}.")
        check_metadata(metadata)
        if max_cost is not None and not 0 <= max_cost < float("inf"):
            raise InvalidInput(f"max_cost must be an amount of 0 or more (it was {max_cost}).")
        await check_file(self._store, input_file_id)
        if idempotency_key is None:
            return await self._create(input_file_id, endpoint, completion_window, metadata, None, max_cost)
        key = idempotency_key.strip()
        if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            raise InvalidInput(f"An idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters.")
        owner = current_owner()
        async with self._create_locks[owner, key]:
            known = await self._store.find_by_idempotency_key(key, owner=owner)
            if known is not None:
                return known.batch
            return await self._create(input_file_id, endpoint, completion_window, metadata, key, max_cost)

    async def _create(
        self,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: Mapping[str, str] | None,
        key: str | None,
        max_cost: float | None,
    ) -> Batch:
        if max_cost is not None:
            check_max_cost(await self.estimate_file(input_file_id), max_cost)
        owner = current_owner()
        batch = await self._client.create_batch(
            input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata=metadata,
            idempotency_key=service_key(key, owner) if key is not None else None,
        )
        key = key if key is not None else batch.metadata.get(IDEMPOTENCY_METADATA_KEY)
        return await self._keep(batch, idempotency_key=key, owner=owner)

    async def estimate_file(self, file_id: str) -> EstimatedCost:
        """What an uploaded file's batch would cost at most: its local copy (if this server uploaded it and it is
        unchanged) or the service's, counted and priced.

        Raises:
            NotFound: the service has no file `file_id`, or it is not the viewer's.
            InvalidInput: `file_id` is empty.
        """
        await check_file(self._store, file_id)
        record = await self._store.get_file(file_id)
        local = Path(record.local_path) if record is not None and record.local_path else None
        size = await anyio.to_thread.run_sync(_size_of, local) if local is not None else None
        if local is not None and size is not None and record is not None and record.file.bytes in (None, size):
            return await self._estimate(local)
        with tempfile.TemporaryDirectory(prefix="aoai-batch-estimate-") as folder:
            copy = Path(folder) / "input.jsonl"
            await self._client.download_file(file_id, copy)
            return await self._estimate(copy)

    async def _estimate(self, path: Path) -> EstimatedCost:
        report = await anyio.to_thread.run_sync(
            lambda: validate_file(path, **self._rules.keywords(), exact_tokens=False)  # as upload's check counts
        )
        return self._pricing.estimate(report.deployment, report.estimated_input_tokens, report.max_output_tokens)

    async def get_batch(self, batch_id: str, *, wait_seconds: float = 0, progress: ProgressFn | None = None) -> Batch:
        """The batch as the service reports it now; with `wait_seconds`, wait up to that long for a change.

        A failed poll during the wait is retried at the next one; only the first look can fail.

        Raises:
            InvalidInput: `wait_seconds` is outside 0-50 (`MAX_WAIT_SECONDS`), or `batch_id` is empty.
            NotFound: the service has no such batch, or it is not the viewer's (`missing="batch"`).
        """
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise InvalidInput(f"A wait must be between 0 and {MAX_WAIT_SECONDS} seconds (it was {wait_seconds}).")
        await check_batch(self._store, batch_id)
        first = await self._refresh(batch_id)
        if wait_seconds == 0 or first.terminal:
            return first
        start = self._clock()
        interval = min(self._settings.poll_seconds, 5.0)
        current = first
        while (elapsed := self._clock() - start) < wait_seconds:
            await _report(progress, elapsed, wait_seconds, current)
            await self._sleep(min(interval, wait_seconds - elapsed))
            try:
                current = await self._refresh(batch_id)
            except TRANSIENT_ERRORS:
                continue  # one failed poll does not end a wait; the next one may succeed
            if _changed(first, current):
                break
        await _report(progress, min(self._clock() - start, wait_seconds), wait_seconds, current)
        return current

    async def _refresh(self, batch_id: str) -> Batch:
        return await self._keep(await self._client.get_batch(batch_id))

    async def _keep(self, batch: Batch, *, idempotency_key: str | None = None, owner: str | None = None) -> Batch:
        """Save what the service said, marked with its resource (the store announces a change to the replicas)."""
        return (await self._store.save_batch(self._here(batch), idempotency_key=idempotency_key, owner=owner)).batch

    def _here(self, batch: Batch) -> Batch:
        """The batch marked with the resource it is on, when that is not this server's own."""
        return batch.model_copy(update={"resource": self._resource}) if self._resource else batch

    async def list_batches(self, *, limit: int = 20, after: str | None = None, status: str | None = None) -> BatchPage:
        """A page of the service's batches, newest first; those in the registry get their local paths.

        A viewer who sees only their own gets a page of the batches of this resource they created, from the
        registry (as last seen: the watcher keeps the running ones fresh; `owners.own_page`).

        Raises:
            InvalidInput: `limit` is outside 1-100.
            InvalidRequest: the service refused the listing (e.g. an `after` it does not know).
        """
        viewer = restricted()
        if viewer is not None:
            if not 1 <= limit <= 100:
                raise InvalidInput(f"limit must be between 1 and 100 (it was {limit}).")
            records = await self._store.list_batches(owner=viewer.owner)
            mine = [record.batch for record in records if self._reaches(record.batch)]
            return own_page(mine, limit=limit, after=after, status=status)
        page = await self._client.list_batches(limit=limit, after=after, status=status)
        batches = [await self._with_registry(batch) for batch in page.batches]
        return page.model_copy(update={"batches": batches})

    async def _with_registry(self, batch: Batch) -> Batch:
        if await self._store.get_batch(batch.id) is None:
            return self._here(batch)
        return await self._keep(batch)

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Ask the service to cancel; cancelling a finished batch is an error, cancelling twice is not.

        Raises:
            InvalidInput: `batch_id` is empty.
            NotFound: the service has no such batch, or it is not the viewer's (`missing="batch"`).
            InvalidRequest: the batch has already finished (`code="batch_not_cancellable"`), or the service refused.
        """
        await check_batch(self._store, batch_id)
        current = await self._refresh(batch_id)
        if current.terminal:
            raise InvalidRequest(
                f"Batch {current.id} is already {current.status}; only a batch that is still running can be cancelled.",
                code="batch_not_cancellable",
            )
        if current.status == "cancelling":
            return current
        return await self._keep(await self._client.cancel_batch(batch_id))

    async def fetch_results(
        self,
        batch_id: str,
        *,
        output_dir: Path,
        format: Literal["jsonl", "csv"] = "jsonl",
        preview: int = 3,
        overwrite: bool = False,
        progress: ProgressFn | None = None,
    ) -> FetchSummary:
        """Download a finished batch's output and error files and join them to its input (`aoai_batch.results.fetch`).

        Raises:
            NotReady: the batch is still running (`batch_id` set).
            NotFound: the service has no such batch (or it is not the viewer's), or its input is neither on the
                service nor on this disk.
            InvalidInput: an unknown `format`, or `preview` outside 0-20.
            FileInTheWay: a result file exists and `overwrite` is false (nothing is written).
            NotWritable: `output_dir` is not a folder, or cannot be written.
            NoSpace: the disk holding `output_dir` is full (nothing half-written is left).
        """
        await check_batch(self._store, batch_id)
        return await fetch.fetch_results(
            self._client,
            self._store,
            batch_id,
            output_dir=Path(output_dir),
            format=format,
            preview=preview,
            overwrite=overwrite,
            progress=progress,
            pricing=self._pricing,
            sources_home=self._settings.home,
        )

    @property
    def sources_home(self) -> Path:
        """Where build keeps the links from the files it built to their source rows (`results.source_rows`)."""
        return self._settings.home

    # the registry

    async def registry_jobs(self) -> list[Batch]:
        """Every batch in the registry (the viewer's own, unless jobs are shared), newest first, as last seen
        (the service is not asked).

        Raises:
            RegistryLocked: another process held the registry's lock past its timeout.
        """
        viewer = restricted()
        owner = viewer.owner if viewer is not None else None
        return [record.batch for record in await self._store.list_batches(owner=owner)]

    async def registry_batch(self, batch_id: str) -> Batch | None:
        """The registry's snapshot of one batch, as last seen (the service is not asked); None if not there.

        Raises:
            RegistryLocked: another process held the registry's lock past its timeout.
        """
        record = await self._store.get_batch(batch_id)
        return record.batch if record is not None else None

    def changes(self) -> AbstractAsyncContextManager[AsyncIterator[tuple[str, str]]]:
        """The (kind, id) of the jobs other processes on this registry announce as changed (`Store.changes`:
        PostgreSQL's LISTEN; on SQLite it never yields, its processes read the file instead)."""
        return self._store.changes()

    async def registry_job(self, batch_id: str) -> Batch:
        """The registry's snapshot, refreshed from the service when the batch is not terminal and stale.

        When the service cannot be reached (or is busy) the last snapshot is returned instead.

        Raises:
            NotFound: neither the registry nor the service knows the batch, or it is not the viewer's.
            InvalidInput: `batch_id` is empty.
        """
        await check_batch(self._store, batch_id)
        record = await self._store.get_batch(batch_id)
        if record is None:
            return await self._refresh(batch_id)
        if not self._is_stale(record):
            return record.batch
        try:
            return await self._refresh(batch_id)
        except TRANSIENT_ERRORS:
            return record.batch  # the service is unreachable for now: the last snapshot is still useful

    async def owner_of(self, batch_id: str) -> str | None:
        """Who created the batch (None: no one signed in, or not in the registry), whoever asks: for telling only
        the users who may see it that it changed."""
        record = await self._store.get_batch(batch_id)
        return record.owner if record is not None else None

    def _is_stale(self, record: BatchRecord) -> bool:
        if record.batch.terminal or not self._reaches(record.batch):
            return False
        return self._now() - record.refreshed_at.timestamp() >= self._settings.poll_seconds

    def _reaches(self, batch: Batch) -> bool:
        """Whether the batch is on the resource this service talks to (a shared registry holds others')."""
        return batch.backend == self.backend and batch.resource == self._resource

    async def results_summary(self, batch_id: str) -> FetchSummary | None:
        """The summary of the last `fetch_results` of the batch, from the registry; None before one.

        Raises:
            NotFound: the batch is not the viewer's.
            RegistryLocked: another process held the registry's lock past its timeout.
        """
        await check_batch(self._store, batch_id)
        return await self._store.results_summary(batch_id)

    async def refresh_active(self) -> list[Batch]:
        """The watcher's poll: ask the service about every unfinished job of this backend whose lease this service
        takes or holds (kind "batch": one process polls a job at a time); return those that changed.

        A run's shard batches are left to its run's step (`leases.is_run_shard`). A lease lasts a few polls
        (`leases.batch_lease_seconds`), is renewed at every poll, and is released once its job is terminal (or
        the service closes); a holder that dies loses its leases when they expire (or at once on this host),
        and the next process's poll takes them. A job the service no longer knows is left as it is; an
        unreachable service ends the round early.

        Raises:
            RegistryLocked: another process held the registry's lock past its timeout.
        """
        records = {
            record.batch.id: record
            for record in await self._store.list_batches(active_only=True)
            if self._reaches(record.batch) and not is_run_shard(record.batch)
        }
        for gone in self._leased - records.keys():  # terminal, saved so by another process (or a tool)
            await self._release(gone)
        ttl = batch_lease_seconds(self.poll_seconds)
        leased_at = self._clock()
        self._leased = await self._store.take_leases("batch", list(records), self._holder, ttl=ttl)
        changed: list[Batch] = []
        for batch_id, record in records.items():
            if self._clock() - leased_at > ttl / 2:  # a long round: renew what is left before a lease runs out
                rest = [job for job in records if job in self._leased]
                self._leased = await self._store.take_leases("batch", rest, self._holder, ttl=ttl)
                leased_at = self._clock()
            if batch_id not in self._leased:
                continue  # another process watches it
            try:
                current = await self._refresh(batch_id)
            except TRANSIENT_ERRORS:
                break
            except BatchToolError:
                continue
            if current.terminal:
                await self._release(batch_id)
            if _changed(record.batch, current):
                changed.append(current)
        return changed

    async def release_leases(self) -> None:
        """Give up every batch lease this service holds (it is closing: another process takes them at once)."""
        with anyio.CancelScope(shield=True):
            for batch_id in list(self._leased):
                await self._release(batch_id)

    async def _release(self, batch_id: str) -> None:
        self._leased.discard(batch_id)
        await self._store.release_lease("batch", batch_id, self._holder)


def _size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _existing_file(path: Path) -> Path:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file; give the path of a JSONL batch file.")
    return path


def _changed(before: Batch, after: Batch) -> bool:
    return (before.status, before.request_counts, before.output_file_id, before.error_file_id) != (
        after.status,
        after.request_counts,
        after.output_file_id,
        after.error_file_id,
    )


async def _report(progress: ProgressFn | None, elapsed: float, total: float, batch: Batch) -> None:
    if progress is None:
        return
    counts = batch.request_counts
    message = f"{batch.id} is {batch.status} ({counts.completed + counts.failed}/{counts.total} requests done)"
    await progress(elapsed, total, message)


async def _embedded_emulator(
    settings: Settings, transport: httpx2.AsyncBaseTransport | None, stack: AsyncExitStack
) -> tuple[Connection, httpx2.AsyncBaseTransport]:
    """The emulator in this process, reached through its ASGI transport (or the transport a test gives)."""
    # Lazy: the emulator pulls in Starlette and its state; only the emulator provider needs it.
    from aoai_batch.emulator import Emulator
    from aoai_batch.settings import EmulatorSettings

    if transport is not None:
        key = settings.api_key.get_secret_value() if settings.api_key else "emulator"
        return emulator_connection(key, api_version=settings.api_version), transport
    emulator = await stack.enter_async_context(Emulator(EmulatorSettings(home=settings.emulator_home)))
    return emulator_connection(emulator.key, api_version=settings.api_version), emulator.transport()
