"""Joining a batch's input file with its output and error files: results rows and a retry file.

Pure: files in, files out. Two passes, each file parsed once (typed decoding of the common shapes in
`result_decode`, the general reader in `result_lines` for the rest):
1. the output and error files: each answer's columns, encoded as JSON once, by custom_id;
2. the input, in order: each request's row assembled from its own fields and its answer's encoded
   columns, written to the results file; the lines of requests that did not succeed, to the retry file.
Memory stays bounded: per request, only its id, a few integers and its encoded answer are kept, and the
answers go to a temporary file once they pass a budget (see `_Records`). The input is never held.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, overload

import orjson

from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer
from aoai_batch.jsonl import BOM, MAX_LINE_BYTES, open_for_reading
from aoai_batch.models import ResultCounts, ResultError, ResultRow, Usage
from aoai_batch.result_decode import read_answer, read_request
from aoai_batch.result_lines import NO_ANSWER, UsageTriple, truncate

ResultFormat = Literal["jsonl", "csv"]

INPUT_CHARS = 500  # the question in the results file: enough to recognise it, not a copy of the prompt
PREVIEW_CHARS = 200  # the summary goes back to a model: keep its rows short
MAX_PREVIEW = 20
FAILED_IDS = 10
MAX_CODES = 20
ANSWERS_BUDGET = 64 << 20  # bytes of encoded answers kept in memory before spilling to disk
CSV_COLUMNS = (
    "custom_id",
    "status",
    "input",
    "content",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "error_code",
    "error_message",
)
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


class _Records:
    """Byte strings numbered in the order added: in memory up to `budget` bytes, the rest in a temporary file."""

    def __init__(self, budget: int) -> None:
        self.memory: list[bytes] = []
        self.budget = budget
        self.file: IO[bytes] | None = None
        self.offsets: array[int] = array("q")
        self.lengths: array[int] = array("q")
        self.size = 0

    def add(self, data: bytes) -> int:
        if self.file is None:
            self.budget -= len(data) + BYTES_OVERHEAD
            if self.budget >= 0:
                self.memory.append(data)
                return len(self.memory) - 1
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.file.write(data)
        self.offsets.append(self.size)
        self.lengths.append(len(data))
        self.size += len(data)
        return len(self.memory) + len(self.offsets) - 1

    def get(self, number: int) -> bytes:
        if number < len(self.memory):
            return self.memory[number]
        assert self.file is not None
        number -= len(self.memory)
        offset, length = self.offsets[number], self.lengths[number]
        if hasattr(os, "pread"):  # one system call, no read-ahead thrown away
            return os.pread(self.file.fileno(), length, offset)
        self.file.seek(offset)
        return self.file.read(length)

    def sequence(self) -> Sequence[bytes]:
        """Indexable by number; the plain list when nothing was spilled (indexing it costs no call)."""
        return self.memory if self.file is None else _Spilled(self)

    def done_adding(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        self.memory.clear()
        if self.file is not None:
            self.file.close()


class _Spilled(Sequence[bytes]):
    def __init__(self, records: _Records) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records.memory) + len(self.records.offsets)

    @overload
    def __getitem__(self, number: int) -> bytes: ...
    @overload
    def __getitem__(self, number: slice) -> Sequence[bytes]: ...
    def __getitem__(self, number: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(number, slice):
            raise TypeError("spilled records are read one at a time")
        return self.records.get(number)


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


# One answer, by custom_id: (state, its encoded columns' record number, usage, error code).
Answer = tuple[int, int, UsageTriple | None, str | None]


@dataclass
class _Answers:
    """What the output and error files say, by custom_id (they are read before the input)."""

    by_id: dict[str, Answer] = field(default_factory=dict)
    records: _Records = field(default_factory=lambda: _Records(ANSWERS_BUDGET))
    unparsable: int = 0
    duplicates: int = 0

    def read(self, path: Path) -> None:
        by_id, add = self.by_id, self.records.add
        with open_for_reading(path) as handle:
            for line in _lines(handle):
                answer = read_answer(line) if len(line) < MAX_LINE_BYTES or not _unreadable(line, handle) else None
                if answer is None:
                    self.unparsable += bool(line.strip())
                    continue
                custom_id, outcome, columns, usage = answer
                if outcome is None and custom_id not in by_id:  # a first plain answer: the common case
                    by_id[custom_id] = (SUCCEEDED, add(columns), usage, None)
                    continue
                state, code = SUCCEEDED, None
                if outcome is not None and outcome.status == "failed":
                    code = outcome.code or "unknown_error"
                    state = NOT_RUN if code in NOT_RUN_CODES else FAILED
                earlier = by_id.get(custom_id)
                if earlier is not None:
                    self.duplicates += 1
                    if earlier[0] == SUCCEEDED or state != SUCCEEDED:
                        continue  # an answer beats an error; otherwise the first line wins
                by_id[custom_id] = (state, add(columns), usage, code)


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
) -> Joined:
    """Write one row per input request, in input order, and a retry file of the requests that did not succeed.

    The retry file is written only when some request failed or is missing; its lines are the input's lines.
    Raises InvalidInput when a file cannot be read or an output file already exists (unless `overwrite`).
    """
    if format not in ("jsonl", "csv"):
        raise InvalidInput(f"Unknown results format {format!r}; use 'jsonl' or 'csv'.")
    if not overwrite and Path(results_path).exists():  # before the work, not only when publishing
        raise InvalidInput(f"{results_path} already exists; choose another name or ask to overwrite it.")
    answers = _Answers()
    try:
        for path in (output_path, error_path):
            if path is not None:
                answers.read(Path(path))
        answers.records.done_adding()
        joined = Joined(
            results_path=Path(results_path),
            retry_path=Path(retry_path),
            unparsable_lines=answers.unparsable,
            duplicate_lines=answers.duplicates,
        )
        _Rows(joined, answers, min(max(preview, 0), MAX_PREVIEW)).write(Path(input_path), format, overwrite)
        return joined
    finally:
        answers.records.close()


class _Rows:
    """The second pass: the input in order, each request with its answer; the retry file opened when needed."""

    def __init__(self, joined: Joined, answers: _Answers, preview: int) -> None:
        self.joined, self.answers, self.preview = joined, answers, preview
        self.codes: Counter[str] = Counter()
        self.matched: set[str] = set()
        self.retry: IO[bytes] | None = None

    def write(self, input_path: Path, format: ResultFormat, overwrite: bool) -> None:
        joined = self.joined
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(open_for_reading(input_path))
            handle = stack.enter_context(atomic_writer(joined.results_path, overwrite=overwrite))
            table = None
            if format == "csv":
                table = _CsvWriter(handle)
                stack.callback(table.close)
            self._rows(source, handle, table, stack, overwrite)
        if self.retry is None:
            joined.retry_path = None
        joined.failures_by_code = _top_codes(self.codes)
        joined.unmatched_lines = len(self.answers.by_id) - len(self.matched)

    def _rows(
        self,
        source: IO[bytes],
        handle: IO[bytes],
        table: _CsvWriter | None,
        stack: contextlib.ExitStack,
        overwrite: bool,
    ) -> None:
        """The hot loop: one decode, one lookup and one formatted row per request; the rest is in _not_done."""
        get_answer, records, matched = self.answers.by_id.get, self.answers.records.sequence(), self.matched
        dumps = orjson.dumps
        pending: list[bytes] = []
        add_row, write_bytes = pending.append, handle.write
        rows = succeeded = prompt = completion = total = 0
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
            state, columns = (answer[0], records[answer[1]]) if answer is not None else (MISSING, MISSING_ANSWER)
            if answer is not None and custom_id not in matched:  # usage counted once per answer
                matched.add(custom_id)
                if usage := answer[2]:
                    prompt, completion, total = prompt + usage[0], completion + usage[1], total + usage[2]
            if table is None:
                add_row(ROW % (dumps(custom_id), STATUS_JSON[state], dumps(question), columns))
                if len(pending) == WRITE_ROWS:  # one write per thousand rows: fewer calls, same bytes
                    write_bytes(b"".join(pending))
                    pending.clear()
            else:
                table.write(custom_id, question, state, columns)
            if state == SUCCEEDED:
                succeeded += 1
            else:
                self._not_done(custom_id, state, answer, line, stack, overwrite)
            if rows < preview:
                self.joined.preview.append(_preview_row(custom_id, question, state, columns))
            rows += 1
        write_bytes(b"".join(pending))
        self.joined.requests = rows
        self.joined.counts.succeeded = succeeded
        self.joined.usage = Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)

    def _not_done(
        self,
        custom_id: str,
        state: int,
        answer: Answer | None,
        line: bytes,
        stack: contextlib.ExitStack,
        overwrite: bool,
    ) -> None:
        joined = self.joined
        if state == FAILED:
            joined.counts.failed += 1
            self.codes[(answer[3] if answer else None) or "unknown_error"] += 1
        else:
            joined.counts.missing += 1
        if len(joined.failed_ids) < FAILED_IDS:
            joined.failed_ids.append(custom_id)
        if self.retry is None:
            assert joined.retry_path is not None
            self.retry = stack.enter_context(atomic_writer(joined.retry_path, overwrite=overwrite))
        self.retry.write(line.rstrip(b"\r\n") + b"\n")


def _top_codes(codes: Counter[str]) -> dict[str, int]:
    """The most frequent codes, the rest summed as `other`: the summary stays small whatever the error file holds."""
    top = dict(codes.most_common(MAX_CODES))
    rest = sum(codes.values()) - sum(top.values())
    return {**top, "other": rest} if rest else top


def _answer_fields(columns: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(b"{" + columns)
    return fields


def _preview_row(custom_id: str, question: str | None, state: int, columns: bytes) -> ResultRow:
    fields = _answer_fields(columns)
    error = fields["error"]
    return ResultRow(
        custom_id=truncate(custom_id, PREVIEW_CHARS) or "",
        status=STATUS_NAMES[state],
        input=truncate(question, PREVIEW_CHARS),
        content=truncate(fields["content"], PREVIEW_CHARS),
        finish_reason=fields["finish_reason"],
        usage=Usage(**fields["usage"]) if fields["usage"] else None,
        error=ResultError(code=error["code"], message=truncate(error["message"], PREVIEW_CHARS)) if error else None,
    )


class _CsvWriter:
    """CSV with the usage and error flattened into columns; the csv module quotes commas, quotes and newlines."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        self.csv = csv.writer(self.text)
        self.csv.writerow(CSV_COLUMNS)

    def write(self, custom_id: str, question: str | None, state: int, columns: bytes) -> None:
        fields = _answer_fields(columns)
        usage = fields["usage"] or {}
        error = fields["error"] or {}
        self.csv.writerow(
            (
                custom_id,
                STATUS_NAMES[state],
                question,
                fields["content"],
                fields["finish_reason"],
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                usage.get("total_tokens"),
                error.get("code"),
                error.get("message"),
            )
        )

    def close(self) -> None:
        self.text.flush()
        self.text.detach()  # the atomic writer owns the file and still has to sync and publish it
