"""Every collected shard's results joined into one results file, one row per input request, in input order.

Pure: files in, files out. One pass over the run's input, in step with the input shards' results (each a
contiguous range of the input, its rows in the same order: a cursor per shard, nothing kept); a request a
retry shard answered takes its latest attempt's row instead (an index of the retried ids: a hash of the id
to where its row is, the only memory that grows, with the number of retried requests). Beside the results:
the raw error lines of every shard, a retry file (the input's lines of what still failed or is missing), and
the summary. Files are written in a scratch folder and published together, never over a file unless asked.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import msgspec
import orjson

from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer, publish_all, remove_stale_scratch, scratch_folder, writing_into
from aoai_batch.jsonl import MAX_LINE_BYTES, open_for_reading
from aoai_batch.models import ResultCounts, ResultError, Usage
from aoai_batch.results.csv_table import CSV_COLUMNS, CsvTable
from aoai_batch.results.fast_lines import read_request
from aoai_batch.results.join import FAILED_IDS, INPUT_CHARS, MAX_PREVIEW, PREVIEW_CHARS, ResultFormat, top_codes
from aoai_batch.results.paths import ResultPaths, plan_paths
from aoai_batch.results.source_rows import SourceColumns, SourceLink, load_link, source_row_json
from aoai_batch.runs.models import RunResultRow, RunResultsSummary, RunStatus, ShardKind
from aoai_batch.runs.plan import SOURCE_LINK_NAME
from aoai_batch.text import truncate

RUN_COLUMNS = ("batch_id", "attempts")
WRITE_ROWS = 1000
# Where a retried request's row is: (attempt << 56) | (part << 40) | byte offset in that part's results.
PART_SHIFT, ATTEMPT_SHIFT = 40, 56
OFFSET_MASK, PART_MASK = (1 << PART_SHIFT) - 1, (1 << (ATTEMPT_SHIFT - PART_SHIFT)) - 1


@dataclass(frozen=True, slots=True)
class ShardResults:
    """What merge reads for one collected shard attempt."""

    kind: ShardKind
    results_path: Path  # the shard's fetch_results JSONL (rows in the shard file's order)
    errors_path: Path | None  # raw error lines
    batch_id: str
    attempt: int  # the request's attempt number in this shard (1 for input shards)
    first_line: int = 0  # an input shard's first line in input.jsonl (0-based): input shards are merged in its order


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _Error(msgspec.Struct, gc=False):
    code: Any = None


class _Row(msgspec.Struct, gc=False):
    custom_id: Any = None
    status: Any = None
    usage: _Usage | None = None
    error: _Error | None = None


class _Id(msgspec.Struct, gc=False):
    custom_id: Any = None


_ROW = msgspec.json.Decoder(_Row)
_ID = msgspec.json.Decoder(_Id)
_EMPTY_ANSWER = b'"content":null,"finish_reason":null,"usage":null,"error":null'


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
    """Write the run's results, errors and retry files into `output_dir` (named after `run_id`, a free `-N`
    suffix unless `overwrite`); return the summary.

    A request no collected shard answered (its shard never ran: the run was cancelled or failed) is `missing`.
    With `source_path` (the rows the run was built from), every row carries its source row's columns, unless
    the source changed since the run started (the note says so).
    Raises InvalidInput for a bad format or preview, NotWritable / NoSpace naming the folder.
    """
    if format not in ("jsonl", "csv"):
        raise InvalidInput(f"format must be 'jsonl' or 'csv' (it was {format!r}).")
    if not 0 <= preview <= MAX_PREVIEW:
        raise InvalidInput(f"preview must be between 0 and {MAX_PREVIEW} rows (it was {preview}).")
    output_dir = Path(output_dir)
    link, source_note = _source(Path(input_path), source_path)
    with writing_into(output_dir):
        output_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_scratch(output_dir)
        paths = plan_paths(output_dir, run_id, format, overwrite=overwrite)
        with scratch_folder(output_dir) as work:
            merger = _Merger(list(parts), Path(input_path), format, preview, link)
            written = merger.write(work)
            _publish_all(written, paths, overwrite)
    return merger.summary(paths, written, run_id=run_id, run_status=run_status, source_note=source_note)


def _source(input_path: Path, source_path: Path | None) -> tuple[SourceLink | None, str | None]:
    if source_path is None:
        return None, None
    link = load_link(input_path.parent / SOURCE_LINK_NAME)
    if link is None or Path(link.path) != Path(source_path).resolve():
        return None, f"The source rows' link of this run is missing, so the columns of {source_path} are not included."
    reason = link.stale_reason()
    return (None, reason) if reason else (link, None)


@dataclass
class _Written:
    results: Path
    errors: Path | None
    retry: Path | None


class _Merger:
    def __init__(
        self, parts: list[ShardResults], input_path: Path, format: ResultFormat, preview: int, link: SourceLink | None
    ) -> None:
        self.inputs = sorted((p for p in parts if p.kind == "input"), key=lambda p: p.first_line)
        self.retries = [p for p in parts if p.kind == "retry"]
        self.parts = parts
        self.input_path = input_path
        self.format = format
        self.preview_rows = preview
        self.link = link
        self.counts = ResultCounts()
        self.usage = [0, 0, 0]
        self.codes: Counter[str] = Counter()
        self.failed_ids: list[str] = []
        self.preview: list[RunResultRow] = []
        self.retried = 0
        self.stack = contextlib.ExitStack()
        self.columns: SourceColumns | None = None
        self.retry: IO[bytes] | None = None
        self.retry_path = Path()

    # --- the retried requests' latest rows ---

    def _retry_index(self) -> dict[int, int]:
        """hash(custom_id) -> where its latest attempt's row is (a later attempt, or a later part, wins)."""
        latest: dict[int, int] = {}
        for number, part in enumerate(self.retries):
            if number > PART_MASK:
                raise InvalidInput("A run has too many retry shards to merge.")
            stamp = (part.attempt << ATTEMPT_SHIFT) | (number << PART_SHIFT)
            offset = 0
            with open_for_reading(part.results_path) as handle:
                for data in iter(functools.partial(handle.readline, MAX_LINE_BYTES), b""):
                    row = _decode(data)
                    if row is not None and type(row.custom_id) is str:
                        key = hash(row.custom_id)
                        if latest.get(key, -1) >> ATTEMPT_SHIFT <= part.attempt:
                            latest[key] = stamp | offset
                    offset += len(data)
        return latest

    # --- the pass ---

    def write(self, work: Path) -> _Written:
        latest = self._retry_index()
        results = work / f"results.{self.format}"
        errors = self._errors(work / "errors.jsonl")
        self.retry_path = work / "retry.jsonl"
        with self.stack:
            out = self.stack.enter_context(atomic_writer(results, overwrite=True))
            table = self._table(out)
            self._rows(out, table, latest)
        return _Written(results=results, errors=errors, retry=self.retry_path if self.retry is not None else None)

    def _table(self, out: IO[bytes]) -> CsvTable | None:
        if self.format != "csv":
            return None
        if self.link is not None:
            self.columns = SourceColumns.of(self.link, (*CSV_COLUMNS, *RUN_COLUMNS))
        table = CsvTable(out, (*RUN_COLUMNS, *(self.columns.header if self.columns else ())))
        self.stack.callback(table.close)
        return table

    def _rows(self, out: IO[bytes], table: CsvTable | None, latest: dict[int, int]) -> None:
        """The hot loop: per request, one id decode, its row from the cursor (or a retry), a few counts."""
        retry_handles = [self.stack.enter_context(open_for_reading(part.results_path)) for part in self.retries]
        source_rows = self.link.rows_in_order() if self.link is not None else None
        cursor = _InputCursor(self.inputs, self.stack)
        pending: list[bytes] = []
        add_row = pending.append
        dumps, read_id = orjson.dumps, _ID.decode
        succeeded = prompt = completion = total = 0
        source = self.stack.enter_context(open_for_reading(self.input_path))
        for line in iter(functools.partial(source.readline, MAX_LINE_BYTES), b""):
            try:
                custom_id = read_id(line).custom_id
            except (msgspec.DecodeError, UnicodeDecodeError):
                continue  # the run's input was checked: every line is a request
            row: _Row | None = None
            found = batch_id = None
            attempts = 0
            if cursor.row_id == custom_id:
                found, row, batch_id = cursor.row, cursor.decoded, cursor.batch_id
                attempts = 1
                cursor.advance()
            if latest and (where := latest.get(hash(custom_id))) is not None:
                number = (where >> PART_SHIFT) & PART_MASK
                handle = retry_handles[number]
                handle.seek(where & OFFSET_MASK)
                retried = handle.readline(MAX_LINE_BYTES)
                retried_row = _decode(retried)
                if retried_row is not None and retried_row.custom_id == custom_id:
                    found, row, batch_id = retried, retried_row, self.retries[number].batch_id
                    attempts = where >> ATTEMPT_SHIFT
                    self.retried += 1
            if found is None or row is None:
                row_bytes = _missing_row(custom_id, line)
                self._not_succeeded(custom_id, "missing", None, line)
            else:
                row_bytes = found[:-1] if found.endswith(b"\n") else found
                if row.status == "succeeded":
                    succeeded += 1
                else:
                    self._not_succeeded(custom_id, row.status, row, line)
                usage = row.usage
                if usage is not None:
                    prompt += usage.prompt_tokens
                    completion += usage.completion_tokens
                    total += usage.total_tokens
            source_row = next(source_rows, {}) if source_rows is not None else None
            if table is None:
                tail = b',"batch_id":%b,"attempts":%d' % (dumps(batch_id), attempts)
                if source_row is not None:
                    tail += b',"source":' + source_row_json(source_row)
                add_row(row_bytes.rstrip(b"\r")[:-1] + tail + b"}\n")
                if len(pending) == WRITE_ROWS:
                    out.write(b"".join(pending))
                    pending.clear()
            else:
                self._csv_row(table, row_bytes, batch_id, attempts, source_row)
            if len(self.preview) < self.preview_rows:
                self.preview.append(_preview_row(row_bytes, batch_id, attempts, source_row))
        out.write(b"".join(pending))
        self.counts.succeeded += succeeded
        self.usage = [prompt, completion, total]

    def _not_succeeded(self, custom_id: str, status: object, row: _Row | None, line: bytes) -> None:
        """A request that failed or is missing: counted, and its input line to the retry file."""
        if status == "failed":
            self.counts.failed += 1
            code = row.error.code if row is not None and row.error is not None else None
            self.codes[code if type(code) is str and code else "unknown_error"] += 1
        else:
            self.counts.missing += 1
        if len(self.failed_ids) < FAILED_IDS:
            self.failed_ids.append(custom_id)
        if self.retry is None:
            self.retry = self.stack.enter_context(atomic_writer(self.retry_path, overwrite=True))
        self.retry.write(line.rstrip(b"\r\n") + b"\n")

    def _csv_row(
        self,
        table: CsvTable,
        row_bytes: bytes,
        batch_id: str | None,
        attempts: int,
        source_row: dict[str, Any] | None,
    ) -> None:
        extra: list[object] = [batch_id, attempts]
        if self.columns is not None:
            extra += self.columns.cells(source_row or {})
        table.write_row(orjson.loads(row_bytes), extra)

    def _errors(self, dest: Path) -> Path | None:
        """Every shard's raw error lines, input shards first (in input order), then retries."""
        sources = [p.errors_path for p in (*self.inputs, *self.retries) if p.errors_path is not None]
        sources = [path for path in sources if path.is_file() and path.stat().st_size]
        if not sources:
            return None
        with atomic_writer(dest, overwrite=True) as out:
            for path in sources:
                with open_for_reading(path) as handle:
                    last = b"\n"
                    while chunk := handle.read(1 << 20):
                        out.write(chunk)
                        last = chunk[-1:]
                    if last != b"\n":
                        out.write(b"\n")
        return dest

    def summary(
        self, paths: ResultPaths, written: _Written, *, run_id: str, run_status: RunStatus, source_note: str | None
    ) -> RunResultsSummary:
        notes: list[str] = []
        if run_status in ("cancelled", "cancelling", "failed") and self.counts.missing:
            notes.append(f"The run is {run_status}: {self.counts.missing} requests did not run (missing).")
        if source_note:
            notes.append(source_note)
        if written.retry is not None:
            again = self.counts.failed + self.counts.missing
            notes.append(f"Upload {paths.retry.name} (a batch file) to run {again} requests again.")
        return RunResultsSummary(
            format=self.format,
            results_path=str(paths.results),
            errors_path=str(paths.errors) if written.errors else None,
            retry_path=str(paths.retry) if written.retry else None,
            counts=self.counts,
            usage=Usage(prompt_tokens=self.usage[0], completion_tokens=self.usage[1], total_tokens=self.usage[2]),
            failures_by_code=top_codes(self.codes),
            failed_ids=self.failed_ids,
            note=" ".join(notes) or None,
            run_id=run_id,
            run_status=run_status,
            preview=self.preview,
            shards=len(self.parts),
            retried=self.retried,
        )


class _InputCursor:
    """The input shards' results rows, read in step with the run's input: the shards in input order, each one's
    rows in its range's order, so the next row is the next request's unless that request's shard was never
    collected (then it is missing, and the cursor waits at the next collected shard's first row)."""

    def __init__(self, parts: list[ShardResults], stack: contextlib.ExitStack) -> None:
        self.parts = iter(parts)
        self.stack = stack
        self.handle: IO[bytes] | None = None
        self.batch_id: str | None = None
        self.row: bytes | None = None
        self.decoded: _Row | None = None
        self.row_id: object = None  # the next row's custom_id: the next request's, unless its shard is not here
        self.advance()

    def advance(self) -> None:
        while True:
            data = self.handle.readline(MAX_LINE_BYTES) if self.handle is not None else b""
            if data:
                row = _decode(data)
                self.row, self.decoded = (data, row) if row is not None else (None, None)
                self.row_id = row.custom_id if row is not None else None
                return
            if self.handle is not None:
                self.handle.close()
            part = next(self.parts, None)
            if part is None:
                self.handle, self.row, self.decoded, self.row_id = None, None, None, None
                return
            self.handle = self.stack.enter_context(open_for_reading(part.results_path))
            self.batch_id = part.batch_id


def _decode(data: bytes) -> _Row | None:
    try:
        return _ROW.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def _missing_row(custom_id: str, line: bytes) -> bytes:
    """The row of a request no shard answered: its question from its input line, no answer."""
    request = read_request(line)
    question = request[1] if request is not None else None
    if question is not None and len(question) > INPUT_CHARS:
        question = truncate(question, INPUT_CHARS)
    dumps = orjson.dumps
    return b'{"custom_id":%b,"status":"missing","input":%b,%b}' % (dumps(custom_id), dumps(question), _EMPTY_ANSWER)


def _preview_row(row_bytes: bytes, batch_id: str | None, attempts: int, source: dict[str, Any] | None) -> RunResultRow:
    row = orjson.loads(row_bytes)
    error = row.get("error")
    return RunResultRow(
        custom_id=truncate(row["custom_id"], PREVIEW_CHARS),
        status=row.get("status") or "missing",
        input=truncate(row.get("input"), PREVIEW_CHARS),
        content=truncate(row.get("content"), PREVIEW_CHARS),
        finish_reason=row.get("finish_reason"),
        usage=Usage(**row["usage"]) if row.get("usage") else None,
        error=ResultError(code=error.get("code"), message=truncate(error.get("message"), PREVIEW_CHARS))
        if isinstance(error, dict)
        else None,
        batch_id=batch_id,
        attempts=attempts,
        source={key: value for key, value in source.items() if isinstance(key, str)} if source else None,
    )


def _publish_all(written: _Written, paths: ResultPaths, overwrite: bool) -> None:
    publish_all(
        [(written.results, paths.results), (written.retry, paths.retry), (written.errors, paths.errors)],
        overwrite=overwrite,
    )
