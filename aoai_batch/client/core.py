"""`BatchClient`: files and batches over the `openai` SDK, for Azure, Azure v1, OpenAI and the emulator.

Every answer is read as raw JSON and normalised once (`normalize`); every SDK or transport error is
translated once (`sdk.translate`). `openai` and `azure.identity` take about a second to import, so they
are imported on the first request, in a worker thread, never when this module is imported: an MCP
server that imports the client starts fast.
"""

from __future__ import annotations

import importlib
import io
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self, TypeVar

import anyio
import anyio.to_thread

from aoai_batch.client.connection import AsyncCredential, Connection
from aoai_batch.client.normalize import snake_case, to_batch, to_file
from aoai_batch.endpoints import bare_endpoint
from aoai_batch.errors import (
    BatchToolError,
    ConnectionFailed,
    InvalidInput,
    InvalidRequest,
    Missing,
    NotFound,
    NotReady,
    RateLimited,
    ServiceUnavailable,
)
from aoai_batch.fileio import atomic_writer
from aoai_batch.limits import DEFAULT_COMPLETION_WINDOW
from aoai_batch.models import Batch, BatchPage, FileInfo, FilePage, ProgressFn

if TYPE_CHECKING:
    import httpx2
    import openai
    from openai._legacy_response import LegacyAPIResponse

    from aoai_batch.client.auth import EntraTokens

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
RawCall = Callable[["openai.AsyncOpenAI"], Awaitable["LegacyAPIResponse[Any]"]]

IDEMPOTENCY_METADATA_KEY = "idempotency_key"
FILE_DONE_STATUSES = frozenset({"processed", "error", "deleting", "deleted"})
FIRST_FILE_POLL_SECONDS = 0.25
LIST_PAGE_SIZE = 100
MAX_SCAN_PAGES = 10
WRITE_BATCH = 4 << 20
READ_CHUNK = 1 << 20  # network reads of 1 MB: fewer Python-level iterations on a 200 MB file
UPLOAD_REPORT_SECONDS = 2.0


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it, for upload progress (a retry's rewind resets the count)."""

    sent = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.sent += len(data or b"")
        return data or b""

    def seek(self, offset: int, whence: int = 0, /) -> int:
        position = super().seek(offset, whence)
        self.sent = position
        return position


async def report(progress: ProgressFn | None, done: float, total: float | None, message: str) -> None:
    if progress is not None:
        await progress(done, total, message)


def _require_id(value: str, what: str) -> str:
    if not value or not value.strip():
        raise InvalidInput(f"Give a {what} id (it was empty).")
    return value.strip()


class BatchClient:
    """One async client for every backend; use as `async with BatchClient(connection) as client`."""

    def __init__(
        self,
        connection: Connection,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        credential: AsyncCredential | None = None,
        sleep: Sleep = anyio.sleep,
        poll_seconds: float = 1.0,
        max_file_wait: float = 600.0,
        create_attempts: int = 5,
        max_retries: int | None = None,
    ) -> None:
        self.connection = connection
        self.backend = connection.backend
        self.poll_seconds = poll_seconds
        self.max_file_wait = max_file_wait
        self.create_attempts = create_attempts
        self.max_retries = max_retries
        self._transport = transport
        self._credential = credential
        self._sleep = sleep
        self._api: openai.AsyncOpenAI | None = None
        self._tokens: EntraTokens | None = None
        self._translate: Callable[[BaseException], BatchToolError | None] = lambda exc: None
        self._transfer_timeout: httpx2.Timeout | None = None
        self._lock = anyio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client and the Entra ID credential (if they were ever opened)."""
        api, self._api = self._api, None
        tokens, self._tokens = self._tokens, None
        try:
            if api is not None:
                await api.close()
        finally:
            if tokens is not None:
                await tokens.close()

    async def _client(self) -> openai.AsyncOpenAI:
        async with self._lock:
            if self._api is None:
                self._api = await self._open()
            return self._api

    async def _open(self) -> openai.AsyncOpenAI:
        # Lazy: `openai` and `azure.identity` cost about a second to import (measured by bench/startup.py).
        await anyio.to_thread.run_sync(importlib.import_module, "aoai_batch.client.sdk")
        from aoai_batch.client import sdk

        connection = self.connection
        self._translate = lambda exc: sdk.translate(exc, connection=connection)
        self._transfer_timeout = sdk.TRANSFER_TIMEOUT
        token_provider = None
        if connection.uses_entra:
            await anyio.to_thread.run_sync(importlib.import_module, "aoai_batch.client.auth")
            from aoai_batch.client.auth import EntraTokens

            self._tokens = EntraTokens(connection.token_scope or "", self._credential)
            token_provider = self._tokens
        http_client = sdk.new_http_client(self._transport)
        return sdk.build_sdk_client(
            connection, http_client=http_client, token_provider=token_provider, max_retries=self.max_retries
        )

    async def _request(self, call: Callable[[openai.AsyncOpenAI], Awaitable[T]], missing: Missing | None = None) -> T:
        """`call` on the SDK client; a 404 becomes NotFound of `missing` (what the request was about)."""
        api = await self._client()
        try:
            return await call(api)
        except BatchToolError:
            raise
        except Exception as exc:  # the one boundary where SDK and transport errors become the error tree
            error = self._translate(exc)
            if error is None:
                raise
            if isinstance(error, NotFound) and error.missing is None:
                error.missing = missing
            raise error from exc

    async def _json(self, call: RawCall, missing: Missing | None = None) -> dict[str, Any]:
        response = await self._request(call, missing)
        try:
            data = response.http_response.json()
        except ValueError as exc:
            raise ServiceUnavailable(f"The answer from {self.connection.label} is not JSON.") from exc
        if not isinstance(data, dict):
            raise ServiceUnavailable(f"Unexpected answer from {self.connection.label}.")
        return data

    # files

    async def upload_file(
        self,
        path: Path,
        *,
        expires_after_days: int | None = None,
        wait: bool = True,
        progress: ProgressFn | None = None,
    ) -> FileInfo:
        """Upload a JSONL batch file, streamed from disk (the SDK would read a `Path` wholly into memory)."""
        path = Path(path)
        size = (await anyio.to_thread.run_sync(path.stat)).st_size
        await report(progress, 0, size, f"Uploading {path.name} ({size} bytes)")
        expires = {"anchor": "created_at", "seconds": expires_after_days * 86400} if expires_after_days else None
        handle = await anyio.to_thread.run_sync(CountingFile, path)
        try:
            data = await self._with_upload_progress(
                lambda: self._json(lambda api: self._create_file(api, path.name, handle, expires)),
                handle,
                size,
                progress,
            )
        finally:
            with anyio.CancelScope(shield=True):  # closed even when the upload was cancelled (a server stopping)
                await anyio.to_thread.run_sync(handle.close)
        info = to_file(data, self.backend)
        await report(progress, size, size, f"Uploaded {path.name} as {info.id}")
        return await self.wait_for_file(info, progress) if wait else info

    async def _with_upload_progress(
        self,
        upload: Callable[[], Awaitable[dict[str, Any]]],
        handle: CountingFile,
        size: int,
        progress: ProgressFn | None,
    ) -> dict[str, Any]:
        """Run the upload while reporting the bytes sent every few seconds (real time: a cadence, not logic)."""
        if progress is None:
            return await upload()
        done = anyio.Event()
        result: dict[str, Any] = {}
        failure: Exception | None = None

        async def tell() -> None:
            while not done.is_set():
                with anyio.move_on_after(UPLOAD_REPORT_SECONDS):
                    await done.wait()
                if not done.is_set():
                    await report(progress, handle.sent, size, f"Uploading: {handle.sent * 100 // max(size, 1)}%")

        async with anyio.create_task_group() as group:
            group.start_soon(tell)
            try:
                result = await upload()
            except Exception as exc:  # re-raised below: leaving the task group would wrap it in an ExceptionGroup
                failure = exc
            finally:
                done.set()
        if failure is not None:
            raise failure
        return result

    def _create_file(
        self, api: openai.AsyncOpenAI, name: str, handle: IO[bytes], expires: dict[str, Any] | None
    ) -> Awaitable[LegacyAPIResponse[Any]]:
        extra: dict[str, Any] = {"expires_after": expires} if expires else {}
        return api.files.with_raw_response.create(
            file=(name, handle, "application/jsonl"),
            purpose="batch",
            timeout=self._transfer_timeout,
            **extra,
        )

    async def get_file(self, file_id: str) -> FileInfo:
        file_id = _require_id(file_id, "file")
        return to_file(
            await self._json(lambda api: api.files.with_raw_response.retrieve(file_id), "file"), self.backend
        )

    async def wait_for_file(self, info: FileInfo, progress: ProgressFn | None = None) -> FileInfo:
        """Poll until the service has processed the file; a file it could not process is an error."""
        waited = 0.0
        # Small files are processed within a second: look again soon, then back off to the poll interval.
        interval = min(FIRST_FILE_POLL_SECONDS, self.poll_seconds)
        while info.status is not None and info.status not in FILE_DONE_STATUSES:
            if waited >= self.max_file_wait:
                raise NotReady(f"File {info.id} is still {info.status} after {waited:.0f} s; check it again later.")
            await report(progress, waited, None, f"File {info.id} is {info.status}; waiting for processing")
            await self._sleep(interval)
            waited += interval
            interval = min(interval * 2, self.poll_seconds)
            info = await self.get_file(info.id)
        if info.status == "error":
            raise InvalidRequest(
                f"The service could not process file {info.id}: {info.status_details or 'no details'}.",
                code="file_processing_failed",
            )
        if info.status in {"deleting", "deleted"}:
            raise InvalidRequest(f"File {info.id} was deleted; upload it again.", code="file_deleted")
        return info

    async def list_files(self, *, limit: int = 20, after: str | None = None, purpose: str | None = None) -> FilePage:
        """One page of uploaded files, newest first: one request (never the SDK's auto-paging iterator).

        Azure's 2024-10-21 files list takes only `purpose`; a service that ignores `limit`, `after` or
        `order` sends every file, so the page is also cut here and paging by `after=last_id` still ends.
        """
        if not 1 <= limit <= 100:
            raise InvalidInput(f"limit must be between 1 and 100 (it was {limit}).")
        extra: dict[str, Any] = {"after": after} if after else {}
        if purpose:
            extra["purpose"] = purpose
        data = await self._json(lambda api: api.files.with_raw_response.list(limit=limit, order="desc", **extra))
        files = [to_file(item, self.backend) for item in data.get("data") or [] if isinstance(item, dict)]
        return file_page(files, limit=limit, after=after, purpose=purpose, more=bool(data.get("has_more")))

    async def delete_file(self, file_id: str) -> None:
        file_id = _require_id(file_id, "file")
        await self._json(lambda api: api.files.with_raw_response.delete(file_id), "file")

    async def download_file(
        self, file_id: str, dest: Path, *, overwrite: bool = False, progress: ProgressFn | None = None
    ) -> int:
        """Stream a file's content to `dest` (a temporary file, then a rename); returns the bytes written."""
        file_id = _require_id(file_id, "file")
        writer = atomic_writer(Path(dest), overwrite=overwrite)
        handle = await anyio.to_thread.run_sync(writer.__enter__)
        try:
            written = await self._request(lambda api: self._stream_to(api, file_id, handle, progress), "file")
        except BaseException as exc:
            await anyio.to_thread.run_sync(writer.__exit__, type(exc), exc, exc.__traceback__)
            raise
        await anyio.to_thread.run_sync(writer.__exit__, None, None, None)
        return written

    async def _stream_to(
        self, api: openai.AsyncOpenAI, file_id: str, handle: IO[bytes], progress: ProgressFn | None
    ) -> int:
        written = 0
        pending: list[bytes] = []
        pending_bytes = 0
        streaming = api.files.with_streaming_response.content(file_id, timeout=self._transfer_timeout)
        async with streaming as response:
            total = int(response.headers.get("content-length") or 0) or None
            async for chunk in response.iter_bytes(READ_CHUNK):
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= WRITE_BATCH:  # one worker-thread hop per few MB, not per network chunk
                    await anyio.to_thread.run_sync(handle.writelines, pending)
                    written += pending_bytes
                    pending, pending_bytes = [], 0
                    await report(progress, written, total, f"Downloading {file_id}")
            await anyio.to_thread.run_sync(handle.writelines, pending)
        return written + pending_bytes

    # batches

    async def create_batch(
        self,
        input_file_id: str,
        *,
        endpoint: str = "/chat/completions",
        completion_window: str = DEFAULT_COMPLETION_WINDOW,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """Create a batch that carries an idempotency key in its metadata, never twice for one key.

        The SDK's own retries are off here: a create whose answer was lost may have succeeded, so before
        each retry (and first, when the caller gave the key) the service's recent batches are searched.
        """
        input_file_id = _require_id(input_file_id, "file")
        key = idempotency_key or uuid.uuid4().hex
        body_metadata = {**(metadata or {}), IDEMPOTENCY_METADATA_KEY: key}
        wire_endpoint = self._wire_endpoint(endpoint)
        failure: BatchToolError | None = None
        for attempt in range(self.create_attempts):
            if attempt > 0 or idempotency_key is not None:
                found = await self.find_batch_by_key(key)
                if found is not None:
                    return found
            try:
                data = await self._json(
                    lambda api: api.with_options(max_retries=0).batches.with_raw_response.create(
                        input_file_id=input_file_id,
                        endpoint=wire_endpoint,  # type: ignore[arg-type]
                        completion_window=completion_window,  # type: ignore[arg-type]
                        metadata=body_metadata,
                    ),
                    "file",  # the only thing a create names that can be missing is its input file
                )
                return to_batch(data, self.backend)
            except (ConnectionFailed, ServiceUnavailable, RateLimited) as exc:
                failure = exc
                delay = self._retry_delay(exc, attempt)
                if attempt + 1 < self.create_attempts:
                    await self._sleep(delay)
        assert failure is not None
        raise failure

    def _retry_delay(self, exc: BatchToolError, attempt: int) -> float:
        if isinstance(exc, RateLimited):
            if exc.retry_after is not None and exc.retry_after > 120:
                raise exc  # quota exhausted for minutes or hours: say so rather than wait
            if exc.retry_after is not None:
                return max(exc.retry_after, 0.0)
        return float(min(0.5 * 2**attempt, 8.0))

    def _wire_endpoint(self, endpoint: str) -> str:
        """OpenAI wants `/v1/chat/completions`; Azure wants `/chat/completions`."""
        bare = bare_endpoint("/" + endpoint.strip().lstrip("/"))
        return f"/v1{bare}" if self.connection.style == "openai" else bare

    async def find_batch_by_key(self, key: str, *, pages: int = 1) -> Batch | None:
        """The batch created with this idempotency key among the service's most recent ones."""
        after: str | None = None
        for _ in range(pages):
            data = await self._list_page(LIST_PAGE_SIZE, after)
            items = [item for item in data.get("data") or [] if isinstance(item, dict)]
            for item in items:
                item_metadata = item.get("metadata")
                if isinstance(item_metadata, dict) and item_metadata.get(IDEMPOTENCY_METADATA_KEY) == key:
                    return to_batch(item, self.backend)
            if not data.get("has_more") or not items:
                return None
            after = str(items[-1].get("id"))
        return None

    async def get_batch(self, batch_id: str) -> Batch:
        batch_id = _require_id(batch_id, "batch")
        return to_batch(
            await self._json(lambda api: api.batches.with_raw_response.retrieve(batch_id), "batch"), self.backend
        )

    async def cancel_batch(self, batch_id: str) -> Batch:
        batch_id = _require_id(batch_id, "batch")
        return to_batch(
            await self._json(lambda api: api.batches.with_raw_response.cancel(batch_id), "batch"), self.backend
        )

    async def _list_page(self, limit: int, after: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"after": after} if after else {}
        return await self._json(lambda api: api.batches.with_raw_response.list(limit=limit, **extra))

    async def list_batches(self, *, limit: int = 20, after: str | None = None, status: str | None = None) -> BatchPage:
        """One page of batches, newest first; with `status`, pages are scanned until `limit` match."""
        if not 1 <= limit <= 100:
            raise InvalidInput(f"limit must be between 1 and 100 (it was {limit}).")
        if status is None:
            data = await self._list_page(limit, after)
            batches = [to_batch(item, self.backend) for item in data.get("data") or [] if isinstance(item, dict)]
            last_id = batches[-1].id if batches else None
            return BatchPage(batches=batches, has_more=bool(data.get("has_more")), last_id=last_id)
        return await self._scan_by_status(limit, after, snake_case(status))

    async def _scan_by_status(self, limit: int, after: str | None, status: str) -> BatchPage:
        found: list[Batch] = []
        cursor = after
        for _ in range(MAX_SCAN_PAGES):
            data = await self._list_page(LIST_PAGE_SIZE, cursor)
            items = [to_batch(item, self.backend) for item in data.get("data") or [] if isinstance(item, dict)]
            for position, batch in enumerate(items):
                cursor = batch.id
                if batch.status == status:
                    found.append(batch)
                if len(found) == limit:
                    more = position < len(items) - 1 or bool(data.get("has_more"))
                    return BatchPage(batches=found, has_more=more, last_id=cursor)
            if not data.get("has_more") or not items:
                return BatchPage(batches=found, has_more=False, last_id=cursor)
        return BatchPage(batches=found, has_more=True, last_id=cursor)


def file_page(files: list[FileInfo], *, limit: int, after: str | None, purpose: str | None, more: bool) -> FilePage:
    """Newest first, after `after`, of `purpose`, at most `limit`: whatever of that the service already did."""
    files = sorted(files, key=lambda f: f.created_at.timestamp() if f.created_at else 0.0, reverse=True)  # stable
    ids = [f.id for f in files]
    if after and after in ids:
        files = files[ids.index(after) + 1 :]
    if purpose:
        files = [f for f in files if f.purpose == purpose]
    page = files[:limit]
    return FilePage(files=page, has_more=more or len(files) > limit, last_id=page[-1].id if page else None)
