"""A batch's life on the clock: validating -> in_progress -> finalizing -> completed (or failed, expired,
cancelling -> cancelled), computed from the clock whenever asked, so it is right however the clock moved.

Everything here is blocking (files, SQLite) and runs in worker threads, one batch step at a time under a lock,
and under the batch's lease (`lease.py`) when other processes share the emulator's home.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

from aoai_batch.emulator.api_errors import ApiError
from aoai_batch.emulator.clock import EmulatorClock
from aoai_batch.emulator.lease import WAIT_SECONDS, LeaseLost
from aoai_batch.emulator.lines import Answerer, fails_on_purpose, injected_failure, unrun_line
from aoai_batch.emulator.records import EmulatedBatch, EmulatedFile, FileKind
from aoai_batch.emulator.state import State
from aoai_batch.endpoints import bare_endpoint
from aoai_batch.limits import DEFAULT_COMPLETION_WINDOW
from aoai_batch.settings import EmulatorSettings
from aoai_batch.validation import validate_file

WINDOW_SECONDS = {DEFAULT_COMPLETION_WINDOW: 86_400.0}
FLUSH_MASK = 2047  # the inline loop writes its lines every 2048 requests
CANCELLABLE = frozenset({"validating", "in_progress"})


Worker = Callable[[], Awaitable[None]]


class Engine(Protocol):
    """How the requests of an in-progress batch are answered: `echo.py` inline, at the pace the clock sets;
    `forward.py` by an OpenAI-compatible endpoint, in real time, from a worker task."""

    def process(self, runner: BatchRunner, record: EmulatedBatch, now: float) -> float | None:
        """Answer what is due by `now` (in a worker thread, under the runner's lock and the batch's lease):
        when the last request was answered, or None while some are left."""
        ...

    def worker(self, runner: BatchRunner, clock: EmulatorClock) -> Worker | None:
        """The task answering requests apart from the clock's steps (it runs until cancelled), or None."""
        ...


class Timings:
    """Durations in clock seconds: the settings' emulated seconds divided by the time scale."""

    def __init__(self, settings: EmulatorSettings) -> None:
        scale = settings.time_scale
        self.validation = settings.validation_seconds / scale
        self.per_request = settings.seconds_per_request / scale
        self.max_processing = settings.max_processing_seconds / scale
        self.finalizing = settings.finalizing_seconds / scale
        self.cancelling = settings.cancelling_seconds / scale
        self.file_processing = settings.file_processing_seconds / scale
        self.scale = scale

    def window(self, completion_window: str) -> float:
        return WINDOW_SECONDS[completion_window] / self.scale

    def processing(self, requests: int) -> float:
        return min(requests * self.per_request, self.max_processing)


class BatchRunner:
    """Moves batches along their lifecycle and writes their output and error files."""

    def __init__(self, state: State, settings: EmulatorSettings, engine: Engine) -> None:
        self.state = state
        self.settings = settings
        self.engine = engine
        self.timings = Timings(settings)
        self.models = settings.deployment_models
        self.lock = threading.RLock()

    # entry points (each takes the lock)

    def advance(self, batch_id: str, now: float) -> EmulatedBatch | None:
        """Bring the batch up to `now`; while another process advances it, its last saved state."""
        with self.lock:
            record = self.state.get_batch(batch_id)
            if record is None or not record.active:
                return record
            with self.state.leases.holding(batch_id) as held:
                if held:
                    return self._advance_held(batch_id, now)
            return record

    def _advance_held(self, batch_id: str, now: float) -> EmulatedBatch | None:
        record = self.state.get_batch(batch_id)  # as the last holder of the lease saved it
        if record is not None and record.active:
            try:
                self._advance(record, now)
            except LeaseLost:
                return self.state.get_batch(batch_id)
        return record

    def advance_all(self, now: float) -> None:
        for batch_id in self.state.active_batch_ids():
            self.advance(batch_id, now)

    def cancel(self, batch_id: str, now: float) -> EmulatedBatch | None:
        with self.lock, self.state.leases.holding(batch_id, wait=WAIT_SECONDS) as held:
            if not held:
                raise _busy()
            record = self.advance(batch_id, now)
            if record is None or record.status == "cancelling":
                return record
            if record.status not in CANCELLABLE:
                raise ApiError(
                    400,
                    "unexpectedEntityState",
                    f"The batch is {record.status}; only a batch that is validating or in progress can be cancelled.",
                )
            record.status, record.cancelling_at = "cancelling", now
            try:
                self._advance(record, now)
            except LeaseLost:
                raise _busy() from None
            return record

    # the state machine

    def _advance(self, record: EmulatedBatch, now: float) -> None:
        """Take every transition due and save the result (only while the batch's lease is still ours)."""
        while self._step(record, now):
            pass
        self.state.leases.renew(record.id)
        self.state.put_batch(record)

    def _step(self, record: EmulatedBatch, now: float) -> bool:
        """Take the next transition due by `now`; False when there is none."""
        t = self.timings
        if record.status == "validating":
            if now < record.created_at + t.validation:
                return False
            self._validate(record, record.created_at + t.validation)
            return True
        if record.status == "in_progress":
            return self._run(record, now)
        if record.status == "finalizing":
            done = (record.finalizing_at or now) + t.finalizing
            if now < done:
                return False
            self._publish(record, done)
            record.status, record.completed_at = "completed", done
            return True
        if record.status == "cancelling":
            done = (record.cancelling_at or now) + t.cancelling
            if now < done:
                return False
            self._publish(record, done)
            record.status, record.cancelled_at = "cancelled", done
            return True
        return False

    def _validate(self, record: EmulatedBatch, at: float) -> None:
        issues = [record.quota_error] if record.quota_error else self._input_issues(record)
        if issues:
            record.status, record.failed_at, record.errors = "failed", at, issues
            return
        record.status, record.in_progress_at = "in_progress", at
        record.processing_seconds = self.timings.processing(record.total)

    def _input_issues(self, record: EmulatedBatch) -> list[dict[str, Any]]:
        path = self.state.file_path(record.input_file_id)
        if self.state.get_file(record.input_file_id) is None or not path.exists():
            return [_issue("invalid_request", "The input file no longer exists; upload it again.")]
        report = validate_file(
            path,
            max_requests=self.settings.max_requests,
            max_bytes=self.settings.max_bytes,
            deployments=list(self.models),
            count_tokens=False,
        )
        issues = [_issue(i.code, i.message, i.line) for i in report.issues]
        if report.url and bare_endpoint(report.url) != bare_endpoint(record.endpoint):
            issues.append(_issue("url_mismatch", f"The file's url {report.url} is not the batch's {record.endpoint}."))
        record.total, record.model = report.requests, report.deployment
        return issues

    def _run(self, record: EmulatedBatch, now: float) -> bool:
        """Answer what is due by `now`; move on when everything is done or the window has passed."""
        finished_at = self.engine.process(self, record, now)
        if finished_at is not None and finished_at <= record.expires_at:
            record.status, record.finalizing_at = "finalizing", finished_at
            return True
        if now >= record.expires_at:
            self._expire(record)
            return True
        return False

    # files

    def work_paths(self, record: EmulatedBatch) -> tuple[Path, Path]:
        work = self.state.work_dir
        return work / f"{record.id}.output.jsonl", work / f"{record.id}.error.jsonl"

    def model_of(self, record: EmulatedBatch) -> str:
        """The model behind the deployment the batch's input names (the deployment's name if unknown)."""
        return self.models.get(record.model or "", record.model or "")

    def answer_inline(self, record: EmulatedBatch, due: int, answer: Answerer) -> None:
        """Answer requests with `answer` until `due` are done (a hot loop: locals, no model writes)."""
        fail_rate = self.settings.fail_rate
        prefix = record.id[-12:].encode()
        cursor, failed = record.cursor, record.failed
        with self.open_work(record) as (source, out, err):
            outs: list[bytes] = []
            errs: list[bytes] = []
            for line in source:
                if len(line) < 3 and not line.strip():  # a validated file has no blank lines but at its end
                    continue
                request = orjson.loads(line)
                custom_id = request["custom_id"]
                request_id = b"%s-%012x" % (prefix, cursor)
                cursor += 1
                if fail_rate and fails_on_purpose(custom_id, fail_rate):
                    errs.append(injected_failure(custom_id, request_id.decode()))
                    failed += 1
                else:
                    outs.append(answer(custom_id, request_id, request["body"]))
                if not cursor & FLUSH_MASK:
                    self._write(out, err, outs, errs)
                    self.state.leases.renew(record.id)  # still ours: nobody took the batch over meanwhile
                if cursor >= due:
                    break
            record.completed += cursor - record.cursor - (failed - record.failed)
            if cursor < due:
                cursor = record.total  # the file ended early: nothing left to do
            record.cursor, record.input_offset, record.failed = cursor, source.tell(), failed
            self._flush(record, out, err, outs, errs)

    def open_work(self, record: EmulatedBatch) -> _WorkFiles:
        return _WorkFiles(self, record)

    @staticmethod
    def _write(out: Any, err: Any, outs: list[bytes], errs: list[bytes]) -> None:
        if outs:
            out.write(b"".join(outs))
            outs.clear()
        if errs:
            err.write(b"".join(errs))
            errs.clear()

    @classmethod
    def _flush(cls, record: EmulatedBatch, out: Any, err: Any, outs: list[bytes], errs: list[bytes]) -> None:
        cls._write(out, err, outs, errs)
        record.output_bytes, record.error_bytes = out.tell(), err.tell()

    def _expire(self, record: EmulatedBatch) -> None:
        """Stop at the end of the window: the requests not run become `batch_expired` error lines."""
        message = "This request could not be executed before the completion window expired."
        with self.open_work(record) as (source, out, err):
            errs: list[bytes] = []
            for line in source:
                if line.strip():
                    errs.append(unrun_line(orjson.loads(line)["custom_id"], "batch_expired", message))
                    record.failed += 1
            self._flush(record, out, err, [], errs)
        record.status, record.expired_at = "expired", record.expires_at
        self._publish(record, record.expires_at)

    def _publish(self, record: EmulatedBatch, at: float) -> None:
        """Turn the work files into the batch's output and error files.

        Idempotent: the files' ids follow from the batch's, and a file published by an attempt that died
        before saving the batch is kept as it is (it was complete: publishing is the last step), so a
        batch is never pointed at a second, empty or partial file.
        """
        output, error = self.work_paths(record)
        if self.settings.no_output_when_all_failed and record.completed == 0:
            output.unlink(missing_ok=True)
        else:
            record.output_file_id = self._add_output(record, output, record.output_bytes, "output", at)
        record.error_file_id = self._add_output(record, error, record.error_bytes, "error", at)

    def _add_output(self, record: EmulatedBatch, work: Path, size: int, kind: FileKind, at: float) -> str:
        file_id = f"file-{uuid.uuid5(uuid.NAMESPACE_URL, f'{record.id}/{kind}').hex}"
        target = self.state.file_path(file_id)
        lifetime = record.output_expires_seconds  # `output_expires_after`, anchored at the file's creation
        if target.exists():
            work.unlink(missing_ok=True)
        else:
            with open(work, "ab") as handle:
                handle.truncate(size)  # what the saved state counts, not what a dead attempt added
            work.replace(target)
        output = EmulatedFile(
            id=file_id,
            filename=f"{record.id}_{kind}.jsonl",
            purpose="batch_output",
            bytes=target.stat().st_size,
            created_at=at,
            ready_at=at,
            expires_at=at + lifetime if lifetime is not None else None,
            kind=kind,
        )
        self.state.put_file(output)
        return file_id


class _WorkFiles:
    """The input (at the batch's offset) and the work files (cut back to the recorded sizes) of a batch."""

    def __init__(self, runner: BatchRunner, record: EmulatedBatch) -> None:
        self.runner = runner
        self.record = record
        self.handles: list[Any] = []

    def __enter__(self) -> tuple[Any, Any, Any]:
        record = self.record
        output, error = self.runner.work_paths(record)
        source = open(self.runner.state.file_path(record.input_file_id), "rb")
        self.handles.append(source)
        source.seek(record.input_offset)
        for path, size in ((output, record.output_bytes), (error, record.error_bytes)):
            handle = open(path, "ab")
            self.handles.append(handle)
            handle.truncate(size)  # drop what a crash left beyond the last saved state
            handle.seek(size)
        return self.handles[0], self.handles[1], self.handles[2]

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.close()


def _busy() -> ApiError:
    return ApiError(409, "conflict", "Another emulator sharing this home is advancing the batch; retry in a moment.")


def _issue(code: str, message: str, line: int | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


class Chunk:
    """Requests read for an engine's worker (forward.py): where they start, and (custom_id, body) for each."""

    __slots__ = ("cursor", "endpoint", "items", "next_offset")

    def __init__(self, cursor: int, endpoint: str, items: list[tuple[str, dict[str, Any]]], next_offset: int) -> None:
        self.cursor = cursor
        self.endpoint = endpoint
        self.items = items
        self.next_offset = next_offset


def read_chunk(runner: BatchRunner, batch_id: str, size: int) -> Chunk | None:
    """The next requests of an in-progress batch for an engine's worker, or None if it needs none."""
    with runner.lock:
        record = runner.state.get_batch(batch_id)
        if record is None or record.status != "in_progress" or record.done_at is not None:
            return None
        items: list[tuple[str, dict[str, Any]]] = []
        offset = record.input_offset
        with open(runner.state.file_path(record.input_file_id), "rb") as source:
            source.seek(offset)
            while len(items) < size:
                line = source.readline()
                if not line:
                    break
                offset += len(line)
                if line.strip():
                    request = orjson.loads(line)
                    items.append((request["custom_id"], request["body"]))
        return Chunk(record.cursor, bare_endpoint(record.endpoint), items, offset)


def commit_chunk(
    runner: BatchRunner, batch_id: str, chunk: Chunk, results: list[tuple[bool, bytes]], now: float
) -> None:
    """Append a worker's results (ok, line) unless the batch moved on meanwhile."""
    with runner.lock, runner.state.leases.holding(batch_id, wait=WAIT_SECONDS) as held:
        record = runner.state.get_batch(batch_id) if held else None
        if record is None or record.status != "in_progress" or record.cursor != chunk.cursor:
            return
        if now < record.expires_at:
            outs = [line for ok, line in results if ok]
            errs = [line for ok, line in results if not ok]
            record.completed += len(outs)
            record.failed += len(errs)
            with runner.open_work(record) as (_source, out, err):
                runner._flush(record, out, err, outs, errs)
            record.cursor += len(results)
            record.input_offset = chunk.next_offset
            if record.cursor >= record.total or not chunk.items:
                record.cursor, record.done_at = record.total, now
        with contextlib.suppress(LeaseLost):  # another emulator took the batch over: it reads this chunk again
            runner._advance(record, now)
