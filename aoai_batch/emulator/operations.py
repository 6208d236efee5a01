"""The emulator's operations on files and batches, independent of HTTP routing.

Blocking work (SQLite, files) runs in worker threads; batch state is brought up to the clock before
anything about a batch is answered.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from aoai_batch.emulator.api_errors import ApiError, invalid, not_found
from aoai_batch.emulator.clock import EmulatorClock
from aoai_batch.emulator.expiry import checked_expiry, upload_expiry
from aoai_batch.emulator.faults import Faults
from aoai_batch.emulator.lifecycle import WINDOW_SECONDS, BatchRunner, Engine
from aoai_batch.emulator.multipart import UploadReader, boundary_of
from aoai_batch.emulator.quota import file_tokens, limit_error, limit_message
from aoai_batch.emulator.records import EmulatedBatch, EmulatedFile
from aoai_batch.emulator.state import State
from aoai_batch.endpoints import bare_endpoint
from aoai_batch.limits import MAX_METADATA_KEY_CHARS, MAX_METADATA_PAIRS, MAX_METADATA_VALUE_CHARS
from aoai_batch.quota import TOKEN_LIMIT_EXCEEDED
from aoai_batch.settings import EmulatorSettings
from aoai_batch.validation import BODY_FIELD

T = TypeVar("T")
MULTIPART_SLACK = 1 << 20  # room for the form's boundaries and small fields around the file
FEED_BYTES = 256 * 1024  # upload bytes handed to a worker thread at a time


class Operations:
    def __init__(self, settings: EmulatorSettings, clock: EmulatorClock, engine: Engine) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = engine
        self.state = State(settings.home, clock.now)
        self.runner = BatchRunner(self.state, settings, engine)
        self.faults = Faults.parse(settings.faults, settings.fault_seed)
        self.opened = False

    def open(self) -> None:
        self.state.open()
        self.opened = True

    def close(self) -> None:
        self.opened = False
        self.state.close()

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if not self.opened:
            raise ApiError(503, "serviceUnavailable", "The emulator is not running yet; enter `async with emulator`.")
        return await anyio.to_thread.run_sync(func, *args)

    # files

    async def upload(
        self, content_type: str | None, length: int | None, body: AsyncIterator[bytes], *, min_expiry: int
    ) -> EmulatedFile:
        boundary = boundary_of(content_type)
        limit = self.settings.max_bytes
        if length is not None and length > limit + MULTIPART_SLACK:
            raise ApiError(413, "invalidPayload", f"The upload is larger than {limit} bytes; split the file.")
        if not self.opened:
            raise ApiError(503, "serviceUnavailable", "The emulator is not running yet.")
        temp = self.state.files_dir / f".upload-{uuid.uuid4().hex}.partial"
        reader = UploadReader(boundary, temp, limit)
        try:
            pending: list[bytes] = []
            size = 0
            async for chunk in body:
                pending.append(chunk)
                size += len(chunk)
                if size >= FEED_BYTES:
                    await self._run(reader.feed, b"".join(pending))
                    pending, size = [], 0
            await self._run(reader.feed, b"".join(pending))
            await self._run(reader.finish)
            return await self._run(self._add_upload, reader, temp, min_expiry)
        finally:
            reader.close()
            temp.unlink(missing_ok=True)

    def _add_upload(self, reader: UploadReader, temp: Path, min_expiry: int) -> EmulatedFile:
        purpose = reader.fields.get("purpose")
        if not purpose:
            raise invalid("The form field `purpose` is required; use purpose=batch.", "purpose")
        if purpose != "batch":
            raise invalid(f"purpose {purpose!r} is not supported here; use purpose=batch.", "purpose")
        if not reader.filename:
            raise invalid("Send the file in a form part named `file` with a filename.", "file")
        seconds = upload_expiry(reader.fields, min_expiry)
        if seconds is None and self.state.uploads_without_expiry() >= self.settings.max_files_without_expiry:
            raise ApiError(
                400,
                "quotaExceeded",
                f"There are already {self.settings.max_files_without_expiry} files without expiry; delete some, "
                "or upload with expires_after.",
            )
        now = self.clock.now()
        record = EmulatedFile(
            id=f"file-{uuid.uuid4().hex}",
            filename=reader.filename[:255],
            purpose=purpose,
            bytes=reader.file_bytes,
            created_at=now,
            ready_at=now + self.runner.timings.file_processing,
            expires_at=now + seconds if seconds is not None else None,
        )
        temp.replace(self.state.file_path(record.id))
        self.state.put_file(record)
        return record

    async def get_file(self, file_id: str) -> EmulatedFile:
        return await self._run(self._get_file, file_id)

    def _get_file(self, file_id: str) -> EmulatedFile:
        record = self.state.get_file(file_id)
        if record is None or self._purge_if_expired(record):
            raise not_found("file", file_id)
        return record

    def _purge_if_expired(self, record: EmulatedFile) -> bool:
        if record.expires_at is None or self.clock.now() < record.expires_at or self.state.input_in_use(record.id):
            return False
        self.state.delete_file(record.id)
        return True

    async def list_files(self, purpose: str | None) -> list[EmulatedFile]:
        return await self._run(self._list_files, purpose)

    def _list_files(self, purpose: str | None) -> list[EmulatedFile]:
        alive = [r for r in self.state.list_files() if not self._purge_if_expired(r)]
        return [r for r in alive if purpose is None or r.purpose == purpose]

    async def delete_file(self, file_id: str) -> None:
        await self._run(self._delete_file, file_id)

    def _delete_file(self, file_id: str) -> None:
        self._get_file(file_id)
        with self.runner.lock:
            self.runner.advance_all(self.clock.now())  # a batch may have ended since it was last asked about
            if self.state.input_in_use(file_id):
                raise ApiError(
                    409, "conflict", "A batch that is still running reads this file; cancel it or wait for it to end."
                )
            self.state.delete_file(file_id)

    async def content_path(self, file_id: str) -> Path:
        record = await self.get_file(file_id)
        return self.state.file_path(record.id)

    # batches

    async def create_batch(self, payload: object, *, min_expiry: int) -> EmulatedBatch:
        return await self._run(self._create_batch, payload, min_expiry)

    def _create_batch(self, payload: object, min_expiry: int) -> EmulatedBatch:
        fields = _batch_fields(payload, min_expiry)
        source = self._get_file(fields["input_file_id"])
        if source.purpose != "batch":
            raise invalid(f"File {source.id} has purpose {source.purpose}; upload the input with purpose=batch.")
        now = self.clock.now()
        if now < source.ready_at:
            raise ApiError(
                400, "unexpectedEntityState", f"File {source.id} is still pending; wait until its status is processed."
            )
        record = EmulatedBatch(
            id=f"batch_{uuid.uuid4()}",
            created_at=now,
            expires_at=now + self.runner.timings.window(fields["completion_window"]),
            **fields,
        )
        if self.faults.token_limit_exceeded():
            record.status, record.failed_at = "failed", now
            record.errors = [_token_limit_error(record.model or "the deployment")]
        elif self.settings.enqueued_tokens:
            self._put_within_quota(record, source, now)
            return record
        self.state.put_batch(record)
        return record

    def _put_within_quota(self, record: EmulatedBatch, source: EmulatedFile, now: float) -> None:
        """Save a new batch holding its file's tokens, if its deployment's enqueued-token limit allows.

        Otherwise, `fail_fast`: refused (400 token_limit_exceeded); `validate`: saved holding nothing, to
        fail in validation.
        """
        if source.tokens is None:  # worked out once per file: a batch refused for quota is often sent again
            source.deployment, source.tokens = file_tokens(self.state.file_path(source.id))
            self.state.put_file(source)
        record.model, record.held_tokens = source.deployment, source.tokens
        limit = self.settings.enqueued_tokens.get(source.deployment or "")
        if limit is None or source.deployment is None:
            self.state.put_batch(record)
            return
        with self.runner.lock:
            for batch_id in self.state.active_batch_ids(source.deployment):  # a batch may have ended meanwhile
                self.runner.advance(batch_id, now)
        held = self.state.put_new_batch(record, limit=limit)
        if held is None:
            return
        message = limit_message(source.deployment, limit, held, source.tokens)
        if self.settings.quota_mode == "fail_fast":
            raise ApiError(400, TOKEN_LIMIT_EXCEEDED, message)
        record.held_tokens, record.quota_error = 0, limit_error(message)
        self.state.put_batch(record)

    async def get_batch(self, batch_id: str) -> EmulatedBatch:
        record = await self._run(self.runner.advance, batch_id, self.clock.now())
        if record is None:
            raise not_found("batch", batch_id)
        return record

    async def list_batches(self) -> list[EmulatedBatch]:
        await self._run(self.runner.advance_all, self.clock.now())
        return await self._run(self.state.list_batches)

    async def cancel_batch(self, batch_id: str) -> EmulatedBatch:
        record = await self._run(self.runner.cancel, batch_id, self.clock.now())
        if record is None:
            raise not_found("batch", batch_id)
        return record

    async def tick(self) -> None:
        """Bring every active batch up to the clock (the background ticker's work)."""
        await self._run(self.runner.advance_all, self.clock.now())


def _batch_fields(payload: object, min_expiry: int) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise invalid("The body must be a JSON object with input_file_id, endpoint and completion_window.")
    input_file_id = payload.get("input_file_id")
    if not isinstance(input_file_id, str) or not input_file_id:
        raise invalid("input_file_id is required: the id of an uploaded batch file.", "input_file_id")
    endpoint = payload.get("endpoint")
    if not isinstance(endpoint, str) or bare_endpoint(endpoint) not in BODY_FIELD:
        raise invalid(f"endpoint must be one of {', '.join(BODY_FIELD)}.", "endpoint")
    window = payload.get("completion_window")
    if window not in WINDOW_SECONDS:
        raise invalid(f"completion_window must be {', '.join(WINDOW_SECONDS)}.", "completion_window")
    metadata = payload.get("metadata")
    if metadata is not None and not _valid_metadata(metadata):
        raise invalid(
            f"metadata must be an object of at most {MAX_METADATA_PAIRS} string values "
            f"(keys up to {MAX_METADATA_KEY_CHARS} characters, values up to {MAX_METADATA_VALUE_CHARS}).",
            "metadata",
        )
    expires = payload.get("output_expires_after")
    lifetime = None if expires is None else checked_expiry(expires, min_expiry, "output_expires_after")
    return {
        "input_file_id": input_file_id,
        "endpoint": endpoint,
        "completion_window": window,
        "metadata": metadata,
        "output_expires_seconds": lifetime,
    }


def _valid_metadata(metadata: object) -> bool:
    return (
        isinstance(metadata, dict)
        and len(metadata) <= MAX_METADATA_PAIRS
        and all(
            isinstance(k, str)
            and isinstance(v, str)
            and len(k) <= MAX_METADATA_KEY_CHARS
            and len(v) <= MAX_METADATA_VALUE_CHARS
            for k, v in metadata.items()
        )
    )


def _token_limit_error(deployment: str) -> dict[str, Any]:
    message = (
        f"The number of enqueued tokens has surpassed the configured limit for the deployment {deployment!r}. "
        "Please either increase the limit or try again once the current jobs have finished."
    )
    return {"code": TOKEN_LIMIT_EXCEEDED, "message": message, "param": None, "line": None}
