"""Joining a batch's input file with its output and error files: results rows and a retry file.

Pure: files in, files out. Two passes, each file parsed once (typed decoding of the common shapes in
`fast_lines`, the general reader in `lines` for the rest; CSV rows by `csv_table`):
1. the output and error files: each answer's columns, encoded as JSON once, by custom_id;
2. the input, in order: each request's row assembled from its own fields and its answer's encoded
   columns, written to the results file; the lines of requests that did not succeed, to the retry file.
Memory stays bounded: per request, only its id and its encoded answer are kept (with its state, usage
and error code when it is not a plain answer), and the answers go to a temporary file once they pass a
budget (see `_Answers`). The input is never held.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import orjson

from aoai_batch.errors import FileInTheWay, InvalidInput
from aoai_batch.fileio import atomic_writer
from aoai_batch.jsonl import BOM, MAX_LINE_BYTES, open_for_reading
from aoai_batch.models import ResultCounts, ResultError, ResultRow, Usage
from aoai_batch.results.csv_table import CSV_COLUMNS, CsvTable
from aoai_batch.results.fast_lines import read_answer, read_request
from aoai_batch.results.lines import NO_ANSWER, Outcome, UsageTriple, answer_fields
from aoai_batch.results.source_rows import SourceColumns, SourceLink, source_row_json
from aoai_batch.text import truncate

ResultFormat = Literal["jsonl", "csv"]

INPUT_CHARS = 500  # the question in the results file: enough to recognise it, not a copy of the prompt
PREVIEW_CHARS = 200  # the summary goes back to a model: keep its rows short
MAX_PREVIEW = 20
FAILED_IDS = 10
MAX_CODES = 20
ANSWERS_BUDGET = 64 << 20  # bytes of encoded answers kept in memory before spilling to disk
MISSING, SUCCEEDED, FAILED, NOT_RUN = 0, 1, 2, 3
STATUS_NAMES = ("missing", "succeeded", "failed", "missing")
# Error lines for requests the service never ran (OpenAI writes them when a batch expires or is cancelled):
# the request is `missing`, as if it had no line, and the row keeps the error saying why.
NOT_RUN_CODES = frozenset({"batch_expired", "batch_cancelled"})
STATUS_JSON = tuple(orjson.dumps(name) for name in STATUS_NAMES)
MISSING_ANSWER = orjson.dumps(NO_ANSWER)[1:]
WRITE_ROWS = 1000
ROW = b'{"custom_id":%b,"status":%b,"input":%b,%b\n'  # the answer's columns close the object
BYTES_OVERHEAD = 33  # what CPython adds to each bytes object, counted against the budget


@dataclass
class Joined:
    """What a join wrote and counted."""

    results_path: Path
    retry_path: Path | None
    requests: int = 0
    counts: ResultCounts = field(default_factory=ResultCounts)
    usage: Usage = field(default_factory=Usage)
    failures_by_code: dict[str, int] = field(default_factory=dict)
    preview: list[ResultRow] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    unparsable_lines: int = 0
    unmatched_lines: int = 0
    duplicate_lines: int = 0
    skipped_input_lines: int = 0
    source_note: str | None = None  # why the source rows' columns are not in the results, when they are not


class _Spill:
    """Byte strings past the memory budget, in a temporary file, numbered in the order added."""

    def __init__(self) -> None:
        self.file: IO[bytes] | None = None
        self.offsets: array[int] = array("q")
        self.lengths: array[int] = array("q")
        self.size = 0

    def add(self, data: bytes) -> int:
        if self.file is None:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.file.write(data)
        self.offsets.append(self.size)
        self.lengths.append(len(data))
        self.size += len(data)
        return len(self.offsets) - 1

    def get(self, number: int) -> bytes:
        assert self.file is not None
        offset, length = self.offsets[number], self.lengths[number]
        if hasattr(os, "pread"):  # one system call, no read-ahead thrown away
            return os.pread(self.file.fileno(), length, offset)
        self.file.seek(offset)
        return self.file.read(length)

    def done_adding(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    """Each line of `handle` (a BOM at the start dropped), at most MAX_LINE_BYTES long: see `_unreadable`.

    A C-level iterator, not a generator: this loop runs once per request.
    """
    if handle.read(len(BOM)) != BOM:
        handle.seek(0)
    return iter(functools.partial(handle.readline, MAX_LINE_BYTES), b"")


def _unreadable(line: bytes, handle: IO[bytes]) -> bool:
    """True for the first piece of a line longer than MAX_LINE_BYTES; the rest is read past, never kept."""
    if len(line) < MAX_LINE_BYTES or line.endswith(b"\n"):
        return False
    while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
        pass
    return True


# One answer, by custom_id. A first plain answer kept in memory (nearly every answer of a big batch) is
# its encoded columns alone, its usage already counted: the second pass takes it with one type check.
# Anything else is (state, its encoded columns or their number in the spill file, usage, error code).
Answer = tuple[int, bytes | int, UsageTriple | None, str | None]


@dataclass
class _Answers:
    """What the output and error files say, by custom_id (they are read before the input)."""

    by_id: dict[str, bytes | Answer] = field(default_factory=dict)
    spill: _Spill = field(default_factory=_Spill)
    budget: int = field(default_factory=lambda: ANSWERS_BUDGET)  # bytes of columns still allowed in memory
    plain_usage: list[int] = field(default_factory=lambda: [0, 0, 0])  # of the bytes-only answers
    unparsable: int = 0
    duplicates: int = 0

    def read(self, path: Path) -> None:
        """The hot loop of the first pass: one decode and one store per line; the rest is in `_other`."""
        by_id = self.by_id
        left = self.budget
        prompt, completion, total = self.plain_usage
        with open_for_reading(path) as handle:
            for line in _lines(handle):
                answer = read_answer(line) if len(line) < MAX_LINE_BYTES or not _unreadable(line, handle) else None
                if answer is None:
                    self.unparsable += bool(line.strip())
                    continue
                custom_id, outcome, columns, usage = answer
                if outcome is None and custom_id not in by_id:  # a first plain answer: the common case
                    left -= len(columns) + BYTES_OVERHEAD
                    if left >= 0:
                        by_id[custom_id] = columns
                        if usage:
                            prompt, completion, total = prompt + usage[0], completion + usage[1], total + usage[2]
                        continue
                self.budget = left
                self._other(custom_id, outcome, columns, usage)
                left = self.budget
        self.budget = left
        self.plain_usage = [prompt, completion, total]

    def _other(self, custom_id: str, outcome: Outcome | None, columns: bytes, usage: UsageTriple | None) -> None:
        """An error, an answer of another shape, a repeated id, or any answer once past the memory budget."""
        state, code = SUCCEEDED, None
        if outcome is not None and outcome.status == "failed":
            code = outcome.code or "unknown_error"
            state = NOT_RUN if code in NOT_RUN_CODES else FAILED
        earlier = self.by_id.get(custom_id)
        if earlier is not None:
            self.duplicates += 1
            if type(earlier) is bytes or earlier[0] == SUCCEEDED or state != SUCCEEDED:
                return  # an answer beats an error; otherwise the first line wins
        self.by_id[custom_id] = (state, self._keep(columns), usage, code)

    def _keep(self, columns: bytes) -> bytes | int:
        """The columns themselves while the budget lasts; past it, their number in the spill file."""
        if self.budget >= 0:  # once spilling, everything else goes to the file too
            self.budget -= len(columns) + BYTES_OVERHEAD
            if self.budget >= 0:
                return columns
        return self.spill.add(columns)

    def unmatched_usage(self, matched: set[str]) -> tuple[int, int, int]:
        """The usage of the bytes-only answers no input request asked for (counted in the first pass)."""
        prompt = completion = total = 0
        for custom_id, answer in self.by_id.items():
            if type(answer) is bytes and custom_id not in matched:
                usage = answer_fields(answer)["usage"] or {}
                prompt += usage.get("prompt_tokens", 0)
                completion += usage.get("completion_tokens", 0)
                total += usage.get("total_tokens", 0)
        return prompt, completion, total


def join_results(
    input_path: Path,
    *,
    output_path: Path | None,
    error_path: Path | None,
    results_path: Path,
    retry_path: Path,
    format: ResultFormat = "jsonl",
    preview: int = 3,
    overwrite: bool = False,
    source: SourceLink | None = None,
) -> Joined:
    """Write one row per input request, in input order, and a retry file of the requests that did not succeed.

    The retry file is written only when some request failed or is missing; its lines are the input's lines.
    With `source` (the rows the input was built from, one per request, in order), each row carries its source
    row's columns.
    Raises InvalidInput when a file cannot be read or an output file already exists (unless `overwrite`).
    """
    if format not in ("jsonl", "csv"):
        raise InvalidInput(f"Unknown results format {format!r}; use 'jsonl' or 'csv'.")
    if not overwrite and Path(results_path).exists():  # before the work, not only when publishing
        raise FileInTheWay(results_path)
    answers = _Answers()
    try:
        for path in (output_path, error_path):
            if path is not None:
                answers.read(Path(path))
        answers.spill.done_adding()
        joined = Joined(
            results_path=Path(results_path),
            retry_path=Path(retry_path),
            unparsable_lines=answers.unparsable,
            duplicate_lines=answers.duplicates,
        )
        rows = _Rows(joined, answers, min(max(preview, 0), MAX_PREVIEW), source)
        rows.write(Path(input_path), format, overwrite)
        return joined
    finally:
        answers.spill.close()


class _Rows:
    """The second pass: the input in order, each request with its answer; the retry file opened when needed."""

    def __init__(self, joined: Joined, answers: _Answers, preview: int, source: SourceLink | None = None) -> None:
        self.joined, self.answers, self.preview, self.source = joined, answers, preview, source
        self.codes: Counter[str] = Counter()
        self.matched: set[str] = set()
        self.usage = [0, 0, 0]  # of the answers that are tuples (the bytes-only ones were counted in pass 1)
        self.retry: IO[bytes] | None = None
        self.stack = contextlib.ExitStack()
        self.overwrite = False

    def write(self, input_path: Path, format: ResultFormat, overwrite: bool) -> None:
        joined, self.overwrite = self.joined, overwrite
        with self.stack as stack:
            source = stack.enter_context(open_for_reading(input_path))
            handle = stack.enter_context(atomic_writer(joined.results_path, overwrite=overwrite))
            table = None
            columns = SourceColumns.of(self.source, CSV_COLUMNS) if self.source and format == "csv" else None
            if format == "csv":
                table = CsvTable(handle, columns.header if columns else ())
                stack.callback(table.close)
            if self.source is not None:
                self._rows_with_source(source, handle, table, self.source, columns)
            else:
                self._rows(source, handle, table)
        if self.retry is None:
            joined.retry_path = None
        joined.failures_by_code = top_codes(self.codes)
        joined.unmatched_lines = len(self.answers.by_id) - len(self.matched)
        # Pass 1 counted every bytes-only answer; those no request asked for come off again.
        unasked = self.answers.unmatched_usage(self.matched) if joined.unmatched_lines else (0, 0, 0)
        counts = zip(self.usage, self.answers.plain_usage, unasked, strict=True)
        prompt, completion, total = (ours + plain - off for ours, plain, off in counts)
        joined.usage = Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)

    def _rows(self, source: IO[bytes], handle: IO[bytes], table: CsvTable | None) -> None:
        """The hot loop: one decode, one lookup and one formatted row per request; the rest is in `_other`."""
        get_answer, add_matched, dumps = self.answers.by_id.get, self.matched.add, orjson.dumps
        pending: list[bytes] = []
        add_row, write_bytes = pending.append, handle.write
        rows = succeeded = 0
        preview = self.preview
        for line in _lines(source):
            request = read_request(line) if len(line) < MAX_LINE_BYTES or not _unreadable(line, source) else None
            if request is None:
                self.joined.skipped_input_lines += bool(line.strip())
                continue
            custom_id, question = request
            if question is not None and len(question) > INPUT_CHARS:
                question = truncate(question, INPUT_CHARS)
            answer = get_answer(custom_id)
            if type(answer) is bytes:  # a plain answer, in memory, its usage already counted: the common case
                add_matched(custom_id)
                state, columns = SUCCEEDED, answer
                succeeded += 1
            else:
                state, columns = self._other(custom_id, answer, line)  # type: ignore[arg-type]
            if table is None:
                add_row(ROW % (dumps(custom_id), STATUS_JSON[state], dumps(question), columns))
                if len(pending) == WRITE_ROWS:  # one write per thousand rows: fewer calls, same bytes
                    write_bytes(b"".join(pending))
                    pending.clear()
            else:
                table.write(custom_id, question, STATUS_NAMES[state], columns)
            if rows < preview:
                self.joined.preview.append(_preview_row(custom_id, question, state, columns))
            rows += 1
        write_bytes(b"".join(pending))
        self.joined.requests = rows
        self.joined.counts.succeeded += succeeded

    def _rows_with_source(
        self,
        source: IO[bytes],
        handle: IO[bytes],
        table: CsvTable | None,
        link: SourceLink,
        columns: SourceColumns | None,
    ) -> None:
        """`_rows` with each request's source row beside it (the rows are read in step with the requests)."""
        get_answer, dumps = self.answers.by_id.get, orjson.dumps
        rows_of_source = link.rows_in_order()
        rows = 0
        for line in _lines(source):
            request = read_request(line) if len(line) < MAX_LINE_BYTES or not _unreadable(line, source) else None
            if request is None:
                self.joined.skipped_input_lines += bool(line.strip())
                continue
            custom_id, question = request
            if question is not None and len(question) > INPUT_CHARS:
                question = truncate(question, INPUT_CHARS)
            answer = get_answer(custom_id)
            if type(answer) is bytes:
                self.matched.add(custom_id)
                state, kept = SUCCEEDED, answer
                self.joined.counts.succeeded += 1
            else:
                state, kept = self._other(custom_id, answer, line)  # type: ignore[arg-type]
            row = next(rows_of_source, {})
            if table is None:
                head = ROW % (dumps(custom_id), STATUS_JSON[state], dumps(question), kept)
                handle.write(head[:-2] + b',"source":' + source_row_json(row) + b"}\n")
            else:
                table.write(custom_id, question, STATUS_NAMES[state], kept, columns.cells(row) if columns else ())
            if rows < self.preview:
                self.joined.preview.append(_preview_row(custom_id, question, state, kept))
            rows += 1
        self.joined.requests = rows

    def _other(self, custom_id: str, answer: Answer | None, line: bytes) -> tuple[int, bytes]:
        """A request without a bytes-only answer: its state and columns, counted, and to the retry file unless done."""
        joined = self.joined
        if answer is None:
            state, columns = MISSING, MISSING_ANSWER
        else:
            state, kept = answer[0], answer[1]
            columns = kept if type(kept) is bytes else self.answers.spill.get(kept)  # type: ignore[arg-type]
            if custom_id not in self.matched:  # usage counted once per answer
                self.matched.add(custom_id)
                if usage := answer[2]:
                    self.usage = [a + b for a, b in zip(self.usage, usage, strict=True)]
        if state == SUCCEEDED:
            joined.counts.succeeded += 1
            return state, columns
        if state == FAILED:
            joined.counts.failed += 1
            self.codes[(answer[3] if answer else None) or "unknown_error"] += 1
        else:
            joined.counts.missing += 1
        if len(joined.failed_ids) < FAILED_IDS:
            joined.failed_ids.append(custom_id)
        if self.retry is None:
            assert joined.retry_path is not None
            self.retry = self.stack.enter_context(atomic_writer(joined.retry_path, overwrite=self.overwrite))
        self.retry.write(line.rstrip(b"\r\n") + b"\n")
        return state, columns


def top_codes(codes: Counter[str]) -> dict[str, int]:
    """The most frequent codes, the rest summed as `other`: the summary stays small whatever the error file holds."""
    top = dict(codes.most_common(MAX_CODES))
    rest = sum(codes.values()) - sum(top.values())
    return {**top, "other": rest} if rest else top


def _preview_row(custom_id: str, question: str | None, state: int, columns: bytes) -> ResultRow:
    fields = answer_fields(columns)
    error = fields["error"]
    return ResultRow(
        custom_id=truncate(custom_id, PREVIEW_CHARS),
        status=STATUS_NAMES[state],
        input=truncate(question, PREVIEW_CHARS),
        content=truncate(fields["content"], PREVIEW_CHARS),
        finish_reason=fields["finish_reason"],
        usage=Usage(**fields["usage"]) if fields["usage"] else None,
        error=ResultError(code=error["code"], message=truncate(error["message"], PREVIEW_CHARS)) if error else None,
    )
