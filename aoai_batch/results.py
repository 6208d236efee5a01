"""Joining a batch's input file with its output and error files: results rows and a retry file.

Pure: files in, files out. Three passes, each file parsed once (typed decoding of the common shapes in
`result_decode`, the general reader in `result_lines` for the rest):
1. the input: each request's custom_id -> its row, its line's offset (for the retry file), and its
   question encoded as JSON;
2. the output and error files: each answer's columns encoded as JSON, by the row of its custom_id;
3. the rows in input order, each assembled from the two encoded halves (no parsing), to the results file.
Memory stays bounded: nothing is kept per request but integers and the two encoded halves, and those go
to a temporary file once they pass a budget (see `_Records`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, overload

import orjson

from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer
from aoai_batch.jsonl import BOM, MAX_LINE_BYTES, open_for_reading
from aoai_batch.models import ResultCounts, ResultError, ResultRow, Usage
from aoai_batch.result_decode import read_answer, read_request
from aoai_batch.result_lines import NO_ANSWER, Outcome, UsageTriple, truncate

ResultFormat = Literal["jsonl", "csv"]

INPUT_CHARS = 500  # the question in the results file: enough to recognise it, not a copy of the prompt
PREVIEW_CHARS = 200  # the summary goes back to a model: keep its rows short
MAX_PREVIEW = 20
FAILED_IDS = 10
MAX_CODES = 20
QUESTIONS_BUDGET = 32 << 20  # bytes of encoded questions kept in memory before spilling to disk
ANSWERS_BUDGET = 64 << 20
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
NO_OUTCOME, SUCCEEDED, FAILED, NOT_RUN = 0, 1, 2, 3
STATUS_NAMES = ("missing", "succeeded", "failed", "missing")
# Error lines for requests the service never ran (OpenAI writes them when a batch expires or is cancelled):
# the request is `missing`, as if it had no line, and the row keeps the error saying why.
NOT_RUN_CODES = frozenset({"batch_expired", "batch_cancelled"})
STATUS_JSON = tuple(orjson.dumps(name) for name in STATUS_NAMES)
MISSING_ANSWER = orjson.dumps(NO_ANSWER)[1:]
WRITE_ROWS = 1000
BYTES_OVERHEAD = 33  # what CPython adds to each bytes object, counted against the budgets


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


def _skip_bom(handle: IO[bytes]) -> int:
    if handle.read(len(BOM)) == BOM:
        return len(BOM)
    handle.seek(0)
    return 0


def _skip_rest_of_line(handle: IO[bytes]) -> int:
    """Read past a line longer than MAX_LINE_BYTES without keeping it; the bytes skipped."""
    skipped = 0
    while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
        skipped += len(rest)
    return skipped + len(rest)


@dataclass
class _Input:
    """Each request's place: its id's first row, its line (offset, length), its encoded custom_id and question."""

    ids: dict[str, int] = field(default_factory=dict)  # custom_id -> row of its first occurrence
    first_row: array[int] = field(default_factory=lambda: array("q"))
    offsets: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))
    heads: _Records = field(default_factory=lambda: _Records(QUESTIONS_BUDGET))  # `{"custom_id":…,"input":…` per row
    skipped: int = 0

    @property
    def rows(self) -> int:
        return len(self.offsets)


def _index_input(path: Path, found: _Input) -> None:
    ids, first_row, offsets, lengths, add_head = (
        found.ids,
        found.first_row,
        found.offsets,
        found.lengths,
        found.heads.add,
    )
    dumps = orjson.dumps
    with open_for_reading(path) as handle:
        offset = _skip_bom(handle)
        readline = handle.readline
        while line := readline(MAX_LINE_BYTES):
            start = offset
            offset += len(line)
            if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
                offset += _skip_rest_of_line(handle)
                found.skipped += 1
                continue
            request = read_request(line)
            if request is None:
                found.skipped += bool(line.strip())
                continue
            custom_id, question = request
            if question is not None and len(question) > INPUT_CHARS:
                question = truncate(question, INPUT_CHARS)
            first_row.append(ids.setdefault(custom_id, len(offsets)))
            offsets.append(start)
            lengths.append(len(line))
            # Sliced (without its closing brace, as the row needs it): orjson's own buffer is 4 KB whatever the size.
            add_head(dumps({"custom_id": custom_id, "input": question})[:-1])


@dataclass
class _Outcomes:
    """What became of each request, by the row of its id's first occurrence."""

    status: bytearray
    answers: array[int]  # row -> its record in `records`
    usage: tuple[array[int], array[int], array[int]]
    records: _Records = field(default_factory=lambda: _Records(ANSWERS_BUDGET))
    codes: dict[int, str] = field(default_factory=dict)  # row -> error code, failed requests only
    unparsable: int = 0
    unmatched: int = 0
    duplicates: int = 0

    @classmethod
    def empty(cls, rows: int) -> _Outcomes:
        def zeros() -> array[int]:
            return array("q", bytes(8 * rows))

        return cls(bytearray(rows), zeros(), (zeros(), zeros(), zeros()))

    def keep(self, row: int, outcome: Outcome | None, columns: bytes, usage: UsageTriple | None) -> None:
        if self.status[row] != NO_OUTCOME:
            self.duplicates += 1
            if self.status[row] == SUCCEEDED or (outcome is not None and outcome.status == "failed"):
                return  # an answer beats an error; otherwise the first line wins
        failed = outcome is not None and outcome.status == "failed"
        if outcome is not None and failed:
            self.status[row] = NOT_RUN if outcome.code in NOT_RUN_CODES else FAILED
            self.codes[row] = outcome.code or "unknown_error"
        else:
            self.status[row] = SUCCEEDED
            self.codes.pop(row, None)
        self.answers[row] = self.records.add(columns)
        self.usage[0][row], self.usage[1][row], self.usage[2][row] = usage or (0, 0, 0)


def _index_outcomes(path: Path, ids: dict[str, int], found: _Outcomes) -> None:
    keep, add, status, answers = found.keep, found.records.add, found.status, found.answers
    usage_0, usage_1, usage_2 = found.usage
    with open_for_reading(path) as handle:
        _skip_bom(handle)
        readline = handle.readline
        while line := readline(MAX_LINE_BYTES):
            if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
                _skip_rest_of_line(handle)
                found.unparsable += 1
                continue
            answer = read_answer(line)
            if answer is None:
                found.unparsable += bool(line.strip())
                continue
            custom_id, outcome, columns, usage = answer
            row = ids.get(custom_id)
            if row is None:
                found.unmatched += 1
                continue
            if outcome is None and status[row] == NO_OUTCOME:  # the common case, without a call
                status[row] = SUCCEEDED
                answers[row] = add(columns)
                if usage:
                    usage_0[row], usage_1[row], usage_2[row] = usage
            else:
                keep(row, outcome, columns, usage)


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
    found = _Input()
    outcomes = _Outcomes.empty(0)
    try:
        _index_input(Path(input_path), found)
        found.heads.done_adding()
        outcomes = _Outcomes.empty(found.rows)
        for path in (output_path, error_path):
            if path is not None:
                _index_outcomes(Path(path), found.ids, outcomes)
        outcomes.records.done_adding()
        found.ids.clear()  # the rest goes by row: let the id table go before the rows are built
        needs_retry = any(outcomes.status[first] != SUCCEEDED for first in found.first_row)
        joined = Joined(
            results_path=Path(results_path),
            retry_path=Path(retry_path) if needs_retry else None,
            requests=found.rows,
            usage=Usage(
                prompt_tokens=sum(outcomes.usage[0]),
                completion_tokens=sum(outcomes.usage[1]),
                total_tokens=sum(outcomes.usage[2]),
            ),
            unparsable_lines=outcomes.unparsable,
            unmatched_lines=outcomes.unmatched,
            duplicate_lines=outcomes.duplicates,
            skipped_input_lines=found.skipped,
        )
        _Writer(joined, found, outcomes, min(max(preview, 0), MAX_PREVIEW)).run(Path(input_path), format, overwrite)
        return joined
    finally:
        found.heads.close()
        outcomes.records.close()


class _Writer:
    """The last pass: each row from its two encoded halves, in input order; the retry file beside."""

    def __init__(self, joined: Joined, found: _Input, outcomes: _Outcomes, preview: int) -> None:
        self.joined, self.found, self.outcomes, self.preview = joined, found, outcomes, preview
        self.codes: Counter[str] = Counter()

    def run(self, input_path: Path, format: ResultFormat, overwrite: bool) -> None:
        joined = self.joined
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(open_for_reading(input_path))
            handle = stack.enter_context(atomic_writer(joined.results_path, overwrite=overwrite))
            retry = None
            if joined.retry_path is not None:
                retry = stack.enter_context(atomic_writer(joined.retry_path, overwrite=overwrite))
            table = None
            if format == "csv":
                table = _CsvWriter(handle)
                stack.callback(table.close)
            self._rows(handle, table, source, retry)
        joined.failures_by_code = _top_codes(self.codes)
        heads, answers = self.found.heads.sequence(), self.outcomes.records.sequence()
        for row in range(min(self.preview, self.found.rows)):
            first = self.found.first_row[row]
            state = self.outcomes.status[first]
            answer = answers[self.outcomes.answers[first]] if state else MISSING_ANSWER
            joined.preview.append(_preview_row(heads[row], state, answer))

    def _rows(self, handle: IO[bytes], table: _CsvWriter | None, source: IO[bytes], retry: IO[bytes] | None) -> None:
        """The hot loop: no parsing, no call but the write for most rows; everything rare is in _unusual."""
        found, outcomes, write_bytes = self.found, self.outcomes, handle.write
        heads, records = found.heads.sequence(), outcomes.records.sequence()
        first_rows, status, answers = found.first_row, outcomes.status, outcomes.answers
        succeeded = 0
        pending: list[bytes] = []
        add = pending.append
        for row in range(found.rows):
            first = first_rows[row]
            state = status[first]
            head = heads[row]
            answer = records[answers[first]] if state else MISSING_ANSWER
            if table is None:
                add(b'%b,"status":%b,%b\n' % (head, STATUS_JSON[state], answer))
                if len(pending) == WRITE_ROWS:  # one write per thousand rows: fewer calls, same bytes
                    write_bytes(b"".join(pending))
                    pending.clear()
            else:
                table.write(head, state, answer)
            if state == SUCCEEDED:
                succeeded += 1
            else:
                self._unusual(row, first, state, head, source, retry)
        write_bytes(b"".join(pending))
        self.joined.counts.succeeded = succeeded

    def _unusual(
        self, row: int, first: int, state: int, head: bytes, source: IO[bytes], retry: IO[bytes] | None
    ) -> None:
        joined = self.joined
        if state == FAILED:
            joined.counts.failed += 1
            self.codes[self.outcomes.codes.get(first) or "unknown_error"] += 1
        else:
            joined.counts.missing += 1
        if len(joined.failed_ids) < FAILED_IDS:
            joined.failed_ids.append(_split_head(head)[0])
        if retry is not None:
            source.seek(self.found.offsets[row])
            retry.write(source.read(self.found.lengths[row]).rstrip(b"\r\n") + b"\n")


def _top_codes(codes: Counter[str]) -> dict[str, int]:
    """The most frequent codes, the rest summed as `other`: the summary stays small whatever the error file holds."""
    top = dict(codes.most_common(MAX_CODES))
    rest = sum(codes.values()) - sum(top.values())
    return {**top, "other": rest} if rest else top


def _split_head(head: bytes) -> tuple[str, str | None]:
    fields = orjson.loads(head + b"}")
    return fields["custom_id"], fields["input"]


def _answer_fields(answer: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(b"{" + answer)
    return fields


def _preview_row(head: bytes, state: int, answer: bytes) -> ResultRow:
    custom_id, question = _split_head(head)
    fields = _answer_fields(answer)
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

    def write(self, head: bytes, state: int, answer: bytes) -> None:
        custom_id, question = _split_head(head)
        fields = _answer_fields(answer)
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
