"""`BatchService`: the client, the registry and the pure core together; what MCP tools and the CLI call."""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import anyio
import anyio.to_thread

from aoai_batch import fetch
from aoai_batch.client import (
    IDEMPOTENCY_METADATA_KEY,
    AsyncCredential,
    BatchClient,
    Connection,
    connection_from_settings,
    emulator_connection,
)
from aoai_batch.errors import (
    BatchToolError,
    ConnectionFailed,
    InvalidBatchFile,
    InvalidInput,
    InvalidRequest,
    NotAFileId,
    RateLimited,
    ServiceUnavailable,
    UnknownDeployment,
)
from aoai_batch.models import (
    Batch,
    BatchEndpoint,
    BatchPage,
    FetchSummary,
    FileInfo,
    FilePage,
    ProgressFn,
    UploadResult,
    ValidationIssue,
    ValidationReport,
)
from aoai_batch.settings import Settings, known_deployments
from aoai_batch.store import BatchRecord, Store
from aoai_batch.validation import validate_file

if TYPE_CHECKING:
    import httpx2

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

ENDPOINTS: frozenset[str] = frozenset(get_args(BatchEndpoint))
COMPLETION_WINDOWS = frozenset({"24h"})
MAX_WAIT_SECONDS = 50
MAX_METADATA_PAIRS = 16
SHOWN_ISSUES = 5
LOCAL_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".txt")
FILE_ID = re.compile(r"file-[A-Za-z0-9_-]+")
# Errors after which a snapshot is still worth showing: the service is unreachable or busy, not wrong.
TRANSIENT_ERRORS = (ConnectionFailed, ServiceUnavailable, RateLimited)


class BatchService:
    """Upload, create, watch, cancel and fetch batches; every batch seen is kept in the registry."""

    def __init__(
        self,
        settings: Settings,
        client: BatchClient,
        store: Store,
        *,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
        now: Clock = time.time,
        deployments: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.backend = client.backend
        # The backend's deployment names when it can say (the embedded emulator); None: names are not checked.
        self.deployments = deployments
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._create_locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)

    @property
    def connection(self) -> Connection:
        return self.client.connection

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
    ) -> AsyncIterator[BatchService]:
        """Open the registry and the client; with the emulator provider and no transport, run it in-process."""
        async with AsyncExitStack() as stack:
            store = await Store.open(settings.state_db, now=now)
            stack.push_async_callback(store.close)
            if settings.provider == "emulator" and not settings.endpoint:
                connection, transport = await _embedded_emulator(settings, transport, stack)
            else:
                connection = connection_from_settings(settings)
            client = BatchClient(
                connection,
                transport=transport,
                credential=credential,
                sleep=sleep,
                poll_seconds=1.0 if connection.backend == "emulator" else 3.0,
            )
            stack.push_async_callback(client.aclose)
            yield cls(
                settings, client, store, sleep=sleep, clock=clock, now=now, deployments=known_deployments(settings)
            )

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
        """Check the file (unless told not to), upload it streamed from disk, and wait until it is processed."""
        path = await anyio.to_thread.run_sync(_existing_file, Path(path))
        if expires_after_days is not None and not 14 <= expires_after_days <= 30:
            raise InvalidInput(f"A file expires after 14 to 30 days, as on Azure (it was {expires_after_days}).")
        report = None
        if validate:
            report = await anyio.to_thread.run_sync(
                lambda: validate_file(
                    path,
                    max_requests=self.settings.max_requests,
                    max_bytes=self.settings.max_bytes,
                    deployments=self.deployments,
                    exact_tokens=False,  # a characters estimate: the tokenizer's tables would double the memory
                )
            )
            if not report.ok:
                raise _invalid_file_error(path, report, self.deployments)
        days = expires_after_days or self.settings.file_expiry_days
        info = await self.client.upload_file(path, expires_after_days=days, wait=wait, progress=progress)
        await self.store.save_file(info, local_path=str(path))
        return UploadResult(file=info, validation=report)

    async def get_file(self, file_id: str) -> FileInfo:
        info = await self.client.get_file(file_id)
        await self.store.save_file(info)
        return info

    async def list_files(self, limit: int = 20, after: str | None = None, purpose: str | None = None) -> FilePage:
        """A page of the service's uploaded files, newest first."""
        return await self.client.list_files(limit=limit, after=after, purpose=purpose)

    # batches

    async def create_batch(
        self,
        input_file_id: str,
        endpoint: str = "/chat/completions",
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """Start a batch; the same idempotency key returns the batch it created before, never a second one.

        A local path or a batch id given as `input_file_id` is refused before any request (NotAFileId).
        """
        folders = [Path.cwd(), *self.settings.workspace_dirs]
        await anyio.to_thread.run_sync(check_input_file_id, input_file_id, folders)
        endpoint = _check_endpoint(endpoint)
        if completion_window not in COMPLETION_WINDOWS:
            raise InvalidInput(f"The completion window must be one of {sorted(COMPLETION_WINDOWS)}.")
        _check_metadata(metadata)
        if idempotency_key is None:
            return await self._create(input_file_id, endpoint, completion_window, metadata, None)
        key = idempotency_key.strip()
        if not key or len(key) > 512:
            raise InvalidInput("An idempotency key must be 1 to 512 characters.")
        async with self._create_locks[key]:
            known = await self.store.find_by_idempotency_key(key)
            if known is not None:
                return known.batch
            return await self._create(input_file_id, endpoint, completion_window, metadata, key)

    async def _create(
        self,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: Mapping[str, str] | None,
        key: str | None,
    ) -> Batch:
        batch = await self.client.create_batch(
            input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata=metadata,
            idempotency_key=key,
        )
        record = await self.store.save_batch(batch, idempotency_key=batch.metadata.get(IDEMPOTENCY_METADATA_KEY))
        return record.batch

    async def get_batch(self, batch_id: str, wait_seconds: float = 0, progress: ProgressFn | None = None) -> Batch:
        """The batch as the service reports it now; with `wait_seconds`, wait up to that long for a change."""
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise InvalidInput(f"A wait must be between 0 and {MAX_WAIT_SECONDS} seconds (it was {wait_seconds}).")
        first = await self._refresh(batch_id)
        if wait_seconds == 0 or first.terminal:
            return first
        start = self._clock()
        interval = min(self.settings.poll_seconds, 5.0)
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
        batch = await self.client.get_batch(batch_id)
        return (await self.store.save_batch(batch)).batch

    async def list_batches(self, limit: int = 20, after: str | None = None, status: str | None = None) -> BatchPage:
        """A page of the service's batches, newest first; those in the registry get their local paths."""
        page = await self.client.list_batches(limit=limit, after=after, status=status)
        batches = [await self._with_registry(batch) for batch in page.batches]
        return page.model_copy(update={"batches": batches})

    async def _with_registry(self, batch: Batch) -> Batch:
        if await self.store.get_batch(batch.id) is None:
            return batch
        return (await self.store.save_batch(batch)).batch

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Ask the service to cancel; cancelling a finished batch is an error, cancelling twice is not."""
        current = await self._refresh(batch_id)
        if current.terminal:
            raise InvalidRequest(
                f"Batch {current.id} is already {current.status}; only a batch that is still running can be cancelled.",
                code="batch_not_cancellable",
            )
        if current.status == "cancelling":
            return current
        batch = await self.client.cancel_batch(batch_id)
        return (await self.store.save_batch(batch)).batch

    async def fetch_results(
        self,
        batch_id: str,
        output_dir: Path,
        format: Literal["jsonl", "csv"] = "jsonl",
        preview: int = 3,
        overwrite: bool = False,
        progress: ProgressFn | None = None,
    ) -> FetchSummary:
        """Download a finished batch's output and error files and join them to its input (`aoai_batch.fetch`)."""
        return await fetch.fetch_results(
            self.client,
            self.store,
            batch_id,
            output_dir=Path(output_dir),
            format=format,
            preview=preview,
            overwrite=overwrite,
            progress=progress,
        )

    # the registry

    async def known_jobs(self) -> list[Batch]:
        """Every batch in the registry, newest first."""
        return [record.batch for record in await self.store.list_batches()]

    async def job(self, batch_id: str) -> Batch:
        """The registry's snapshot, refreshed from the service when the batch is not terminal and stale."""
        record = await self.store.get_batch(batch_id)
        if record is None:
            return await self._refresh(batch_id)
        if not self._is_stale(record):
            return record.batch
        try:
            return await self._refresh(batch_id)
        except TRANSIENT_ERRORS:
            return record.batch  # the service is unreachable for now: the last snapshot is still useful

    def _is_stale(self, record: BatchRecord) -> bool:
        if record.batch.terminal or record.batch.backend != self.backend:
            return False
        return self._now() - record.refreshed_at.timestamp() >= self.settings.poll_seconds

    async def results_summary(self, batch_id: str) -> FetchSummary | None:
        return await self.store.results_summary(batch_id)

    async def refresh_active(self) -> list[Batch]:
        """The watcher's poll: ask the service about every unfinished job of this backend; return those that changed.

        A job the service no longer knows is left as it is; an unreachable service ends the round early.
        """
        changed: list[Batch] = []
        for record in await self.store.list_batches(active_only=True):
            if record.batch.backend != self.backend:
                continue
            try:
                current = await self._refresh(record.batch.id)
            except TRANSIENT_ERRORS:
                break
            except BatchToolError:
                continue
            if _changed(record.batch, current):
                changed.append(current)
        return changed


def _existing_file(path: Path) -> Path:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file; give the path of a JSONL batch file.")
    return path


def check_input_file_id(value: str, folders: Iterable[Path] = ()) -> None:
    """Raise NotAFileId for a batch id, or for a path (a file name, or a file in one of `folders`)."""
    text = value.strip()
    if text.startswith("batch_"):
        raise NotAFileId(f"{text} is a batch id, not the id of an uploaded file.", value=text, given="batch")
    if FILE_ID.fullmatch(text):
        return  # the shape of every backend's file ids, even if a file of that name happens to exist here
    named_like_a_path = text.lower().endswith(LOCAL_FILE_SUFFIXES) or any(sep in text for sep in ("/", "\\", os.sep))
    if text and (named_like_a_path or _exists_in(text, folders)):
        raise NotAFileId(f"{text} is a local file path, not the id of an uploaded file.", value=text, given="path")


def _exists_in(name: str, folders: Iterable[Path]) -> bool:
    try:
        return any((folder / Path(name).expanduser()).exists() for folder in folders)
    except (OSError, ValueError):  # a name no file system accepts (too long, a NUL byte) is no path
        return False


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


def _check_endpoint(endpoint: str) -> str:
    bare = "/" + endpoint.strip().lstrip("/").removeprefix("v1/")
    if bare not in ENDPOINTS:
        raise InvalidInput(f"The endpoint must be one of {sorted(ENDPOINTS)} (it was {endpoint!r}).")
    return bare


def _check_metadata(metadata: Mapping[str, str] | None) -> None:
    if not metadata:
        return
    if len(metadata) >= MAX_METADATA_PAIRS:
        raise InvalidInput(
            f"Metadata takes at most {MAX_METADATA_PAIRS - 1} pairs (one is kept for the idempotency key)."
        )
    if IDEMPOTENCY_METADATA_KEY in metadata:
        raise InvalidInput(f"The metadata key {IDEMPOTENCY_METADATA_KEY!r} is reserved for the idempotency key.")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key or len(key) > 64 or len(value) > 512:
            raise InvalidInput("Metadata keys must be 1 to 64 characters and values strings of up to 512 characters.")


def _invalid_file_error(path: Path, report: ValidationReport, known: Sequence[str] | None) -> InvalidInput:
    """UnknownDeployment (naming the deployments there are) when the file's deployment does not exist."""
    message = _invalid_file_message(path, report.issue_counts, report.issues)
    name = report.deployment
    if known is None or name is None or name in known:
        return InvalidBatchFile(message, path=path)
    names = ", ".join(sorted(known)) or "none"
    head = f"{path} uses deployment {name!r}, which does not exist (the deployments are {names}); nothing was uploaded."
    only_that = set(report.issue_counts) == {"model_not_found"}
    return UnknownDeployment(name, sorted(known), message=head if only_that else f"{head} Also: {message}")


def _invalid_file_message(path: Path, counts: Mapping[str, int], issues: list[ValidationIssue]) -> str:
    total = sum(counts.values())
    shown = "; ".join(
        f"line {issue.line}: {issue.code}" if issue.line else issue.code for issue in issues[:SHOWN_ISSUES]
    )
    more = f" and {total - SHOWN_ISSUES} more" if total > SHOWN_ISSUES else ""
    return f"{path} is not a valid batch file ({shown}{more}); nothing was uploaded."


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
