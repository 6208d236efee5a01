"""Joining a batch's input file with its output and error files: results rows, a retry file, a summary.

Pure: files in, files out. Memory stays small for a 100,000-request batch because nothing is held per
request but a few integers: the input is indexed by byte offsets, each side is parsed once, and what the
join needs from each line (the question, the outcome) is spilled to a temporary file and read back in
input order.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer
from aoai_batch.jsonl import BOM, iter_lines, open_for_reading
from aoai_batch.models import Batch, BatchError, BatchStatus, FetchSummary, ResultCounts, ResultError, ResultRow, Usage
from aoai_batch.result_lines import Outcome, outcome_of, question_of, truncate

ResultFormat = Literal["jsonl", "csv"]

INPUT_CHARS = 500  # the question in the results file: enough to recognise it, not a copy of the prompt
PREVIEW_CHARS = 200  # the summary goes back to a model: keep its rows short
MAX_PREVIEW = 20
FAILED_IDS = 10
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
NO_OUTCOME, SUCCEEDED, FAILED = 0, 1, 2


@dataclass(frozen=True)
class ResultPaths:
    results: Path
    errors: Path
    retry: Path


def plan_paths(output_dir: Path, batch_id: str, format: ResultFormat, *, overwrite: bool = False) -> ResultPaths:
    """Where a fetch writes; without `overwrite`, the first `-N` suffix under which no file exists yet."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", batch_id).lstrip(".") or "batch"
    n = 1
    while True:
        suffix = "" if n == 1 else f"-{n}"
        paths = ResultPaths(
            results=output_dir / f"{stem}-results{suffix}.{format}",
            errors=output_dir / f"{stem}-errors{suffix}.jsonl",
            retry=output_dir / f"{stem}-retry{suffix}.jsonl",
        )
        if overwrite or not any(p.exists() for p in (paths.results, paths.errors, paths.retry)):
            return paths
        n += 1


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


class _Spill:
    """An append-only temporary file of small records, read back by (offset, length)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (kept open across passes; close() ends it)
        self.size = 0

    def append(self, data: bytes) -> tuple[int, int]:
        self.file.write(data)
        offset, self.size = self.size, self.size + len(data)
        return offset, len(data)

    def close(self) -> None:
        self.file.close()


def _read_at(handle: IO[bytes], offset: int, length: int) -> bytes:
    if hasattr(os, "pread"):  # one system call, no read-ahead buffer thrown away
        return os.pread(handle.fileno(), length, offset)
    handle.seek(offset)
    return handle.read(length)


@dataclass
class _InputIndex:
    ids: dict[str, int] = field(default_factory=dict)  # custom_id -> row of its first occurrence
    first_row: array[int] = field(default_factory=lambda: array("q"))  # row -> row of its id's first occurrence
    offsets: array[int] = field(default_factory=lambda: array("q"))  # row -> the line in the input file
    lengths: array[int] = field(default_factory=lambda: array("q"))
    skipped: int = 0


def _lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(offset of the content, content without line ending or BOM) for every non-blank line.

    The content is None for a line too long to read (see jsonl.MAX_LINE_BYTES): it is counted, never kept.
    """
    with open_for_reading(path) as handle:
        for line in iter_lines(handle):
            start, content = line.offset, line.data
            if content is None:
                yield start, None
                continue
            content = content.rstrip(b"\r\n")
            if start == 0 and content.startswith(BOM):
                content, start = content[len(BOM) :], len(BOM)
            if content.strip():
                yield start, content


def _parse_object(content: bytes | None) -> tuple[dict[str, Any], str] | None:
    """The JSON object on a line and its custom_id, or None when the line is not such an object."""
    if content is None:
        return None
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    custom_id = parsed.get("custom_id") if isinstance(parsed, dict) else None
    return (parsed, custom_id) if isinstance(custom_id, str) else None


def _index_input(path: Path, spill: _Spill) -> _InputIndex:
    index = _InputIndex()
    for offset, content in _lines(path):
        parsed = _parse_object(content)
        if parsed is None or content is None:
            index.skipped += 1
            continue
        request, custom_id = parsed
        row = len(index.offsets)
        index.first_row.append(index.ids.setdefault(custom_id, row))
        index.offsets.append(offset)
        index.lengths.append(len(content))
        question = truncate(question_of(request), INPUT_CHARS)
        spill.append(orjson.dumps([custom_id, question]) + b"\n")  # read back in order, line by line
    return index


@dataclass
class _Outcomes:
    status: bytearray
    offsets: array[int]
    lengths: array[int]
    unparsable: int = 0
    unmatched: int = 0
    duplicates: int = 0


def _index_outcomes(paths: list[Path], index: _InputIndex, spill: _Spill) -> _Outcomes:
    rows = len(index.offsets)
    found = _Outcomes(bytearray(rows), array("q", bytes(8 * rows)), array("q", bytes(8 * rows)))
    for path in paths:
        for _, content in _lines(path):
            _record(found, index, spill, content)
    return found


def _record(found: _Outcomes, index: _InputIndex, spill: _Spill, content: bytes | None) -> None:
    parsed = _parse_object(content)
    if parsed is None:
        found.unparsable += 1
        return
    line, custom_id = parsed
    row = index.ids.get(custom_id)
    if row is None:
        found.unmatched += 1
        return
    outcome = outcome_of(line)
    if found.status[row] != NO_OUTCOME:
        found.duplicates += 1
        if found.status[row] == SUCCEEDED or outcome.status == "failed":
            return  # an answer beats an error; otherwise the first line wins
    found.offsets[row], found.lengths[row] = spill.append(outcome.dump())
    found.status[row] = SUCCEEDED if outcome.status == "succeeded" else FAILED


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
    """
    questions, answers = _Spill(), _Spill()
    try:
        index = _index_input(Path(input_path), questions)
        outcomes = _index_outcomes([Path(p) for p in (output_path, error_path) if p is not None], index, answers)
        questions.file.flush()
        answers.file.flush()
        needs_retry = any(outcomes.status[first] != SUCCEEDED for first in index.first_row)
        joined = Joined(
            results_path=Path(results_path),
            retry_path=Path(retry_path) if needs_retry else None,
            requests=len(index.offsets),
            unparsable_lines=outcomes.unparsable,
            unmatched_lines=outcomes.unmatched,
            duplicate_lines=outcomes.duplicates,
            skipped_input_lines=index.skipped,
        )
        index.ids.clear()  # the rest goes by row: let the id table go before the rows are built
        preview = min(max(preview, 0), MAX_PREVIEW)
        _write(joined, Path(input_path), index, outcomes, questions, answers, format, preview, overwrite)
        return joined
    finally:
        questions.close()
        answers.close()


def _write(
    joined: Joined,
    input_path: Path,
    index: _InputIndex,
    outcomes: _Outcomes,
    questions: _Spill,
    answers: _Spill,
    format: ResultFormat,
    preview: int,
    overwrite: bool,
) -> None:
    usage = [0, 0, 0]
    codes: Counter[str] = Counter()
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_for_reading(input_path))
        writer = _row_writer(format, stack.enter_context(atomic_writer(joined.results_path, overwrite=overwrite)))
        stack.callback(writer.close)
        retry = None
        if joined.retry_path is not None:
            retry = stack.enter_context(atomic_writer(joined.retry_path, overwrite=overwrite))
        questions.file.seek(0)
        for row, line in enumerate(questions.file):
            custom_id, question = orjson.loads(line)
            first = index.first_row[row]
            state = outcomes.status[first]
            outcome = None
            if state != NO_OUTCOME:
                outcome = Outcome.load(_read_at(answers.file, outcomes.offsets[first], outcomes.lengths[first]))
            status = "missing" if outcome is None else outcome.status
            record = _row(custom_id, status, question, outcome)
            writer.write(record)
            _count(joined, codes, custom_id, outcome)
            if outcome is not None and outcome.usage and first == row:
                usage = [a + b for a, b in zip(usage, outcome.usage, strict=True)]
            if row < preview:
                joined.preview.append(_preview_row(record))
            if retry is not None and state != SUCCEEDED:
                retry.write(_read_at(source, index.offsets[row], index.lengths[row]) + b"\n")
    joined.usage = Usage(prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=usage[2])
    joined.failures_by_code = dict(codes.most_common())


def _count(joined: Joined, codes: Counter[str], custom_id: str, outcome: Outcome | None) -> None:
    counts = joined.counts
    if outcome is None:
        counts.missing += 1
    elif outcome.status == "succeeded":
        counts.succeeded += 1
        return
    else:
        counts.failed += 1
        codes[outcome.code or "unknown_error"] += 1
    if len(joined.failed_ids) < FAILED_IDS:
        joined.failed_ids.append(custom_id)


def _row(custom_id: str, status: str, question: str | None, outcome: Outcome | None) -> dict[str, Any]:
    if outcome is None:
        return {"custom_id": custom_id, "status": status, "input": question, "content": None,
                "finish_reason": None, "usage": None, "error": None}  # fmt: skip
    usage = outcome.usage
    return {
        "custom_id": custom_id,
        "status": status,
        "input": question,
        "content": outcome.content,
        "finish_reason": outcome.finish_reason,
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[2]}
        if usage
        else None,
        "error": {"code": outcome.code, "message": outcome.message} if outcome.status == "failed" else None,
    }


def _preview_row(record: dict[str, Any]) -> ResultRow:
    error = record["error"]
    return ResultRow(
        custom_id=truncate(record["custom_id"], PREVIEW_CHARS) or "",
        status=record["status"],
        input=truncate(record["input"], PREVIEW_CHARS),
        content=truncate(record["content"], PREVIEW_CHARS),
        finish_reason=record["finish_reason"],
        usage=Usage(**record["usage"]) if record["usage"] else None,
        error=ResultError(code=error["code"], message=truncate(error["message"], PREVIEW_CHARS)) if error else None,
    )


class _JsonlWriter:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write(orjson.dumps(record) + b"\n")

    def close(self) -> None:
        pass


class _CsvWriter:
    """CSV with the usage and error flattened into columns; the csv module quotes commas, quotes and newlines."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=False)
        self.csv = csv.writer(self.text)
        self.csv.writerow(CSV_COLUMNS)

    def write(self, record: dict[str, Any]) -> None:
        usage = record["usage"] or {}
        error = record["error"] or {}
        self.csv.writerow(
            (
                record["custom_id"],
                record["status"],
                record["input"],
                record["content"],
                record["finish_reason"],
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


def _row_writer(format: ResultFormat, handle: IO[bytes]) -> _JsonlWriter | _CsvWriter:
    if format == "csv":
        return _CsvWriter(handle)
    if format == "jsonl":
        return _JsonlWriter(handle)
    raise InvalidInput(f"Unknown results format {format!r}; use 'jsonl' or 'csv'.")


# --- the summary --------------------------------------------------------------------------------------


def summarize(
    joined: Joined,
    *,
    batch_id: str,
    batch_status: BatchStatus,
    format: ResultFormat,
    errors_path: Path | None,
    had_output_file: bool,
    batch_errors: list[BatchError] | None = None,
) -> FetchSummary:
    return FetchSummary(
        batch_id=batch_id,
        batch_status=batch_status,
        format=format,
        results_path=str(joined.results_path),
        errors_path=str(errors_path) if errors_path else None,
        retry_path=str(joined.retry_path) if joined.retry_path else None,
        counts=joined.counts,
        usage=joined.usage,
        failures_by_code=joined.failures_by_code,
        preview=joined.preview,
        failed_ids=joined.failed_ids,
        unparsable_lines=joined.unparsable_lines,
        unmatched_lines=joined.unmatched_lines,
        duplicate_lines=joined.duplicate_lines,
        note=note_for(joined, batch_status, had_output_file=had_output_file, batch_errors=batch_errors or []),
    )


def not_run_summary(batch: Batch, format: ResultFormat) -> FetchSummary:
    """The summary of a batch that failed before any request ran (validation): nothing to join, say why."""
    codes = Counter(error.code or "unknown_error" for error in batch.errors)
    return FetchSummary(
        batch_id=batch.id,
        batch_status=batch.status,
        format=format,
        counts=ResultCounts(missing=batch.request_counts.total),
        failures_by_code=dict(codes.most_common()),
        note=(
            f"The batch failed validation{_describe(batch.errors)}, so no request ran and there are no results. "
            "Fix the input file (validate_batch_file shows every issue), upload it again and create a new batch."
        ),
    )


def note_for(
    joined: Joined, batch_status: BatchStatus, *, had_output_file: bool, batch_errors: list[BatchError]
) -> str | None:
    """A sentence for each special case, so a partial result is never mistaken for a whole one."""
    notes: list[str] = []
    counts = joined.counts
    if batch_status in ("cancelled", "expired"):
        notes.append(
            f"The batch was {batch_status} before it finished: {counts.missing} requests did not run (missing)."
        )
    elif batch_status == "failed":
        notes.append(f"The batch failed{_describe(batch_errors)}.")
    if not had_output_file and joined.requests:
        notes.append("The batch has no output file: no request succeeded.")
    if joined.unparsable_lines or joined.unmatched_lines or joined.duplicate_lines:
        notes.append(
            f"Output and error lines skipped: {joined.unparsable_lines} not valid result lines, "
            f"{joined.unmatched_lines} with a custom_id not in the input, {joined.duplicate_lines} repeated."
        )
    if joined.skipped_input_lines:
        notes.append(f"{joined.skipped_input_lines} input lines were not requests (no JSON object with a custom_id).")
    if joined.retry_path is not None:
        notes.append(f"Upload {joined.retry_path.name} to run the {counts.failed + counts.missing} requests again.")
    return " ".join(notes) or None


def _describe(errors: list[BatchError]) -> str:
    if not errors:
        return ""
    shown = "; ".join(f"{e.code or 'error'}: {e.message or ''}".strip() for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f" ({shown}{more})"
