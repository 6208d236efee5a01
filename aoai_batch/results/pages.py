"""A page of a results file's rows (JSONL or CSV), for a view that shows them a screenful at a time.

A results file may hold 100,000 rows: nothing reads it whole. A page skips `offset` rows and reads
`limit` more (and one to know whether more follow); the texts are cut to `text_limit` characters, as in
a preview. A spreadsheet-safe CSV keeps its leading quotes: the page shows the file as written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import IO

import orjson
from pydantic import BaseModel, Field, ValidationError

from aoai_batch.jsonl import open_for_reading
from aoai_batch.models import ResultError, ResultRow, Usage
from aoai_batch.text import truncate

MAX_PAGE_ROWS = 100
PAGE_TEXT_CHARS = 1000
USAGE_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens")


class RowPage(BaseModel):
    """Rows `offset` .. `offset + len(rows) - 1` of a results file (0-based)."""

    offset: int
    rows: list[ResultRow] = Field(default_factory=list)
    next_offset: int | None = Field(None, description="Where the next page starts; None at the end.")


def read_page(path: Path, *, offset: int = 0, limit: int = 20, text_limit: int = PAGE_TEXT_CHARS) -> RowPage:
    """Rows of the results file at `path` (`.csv` is read as CSV, anything else as JSONL).

    Raises InvalidInput when the file cannot be read.
    """
    limit = min(max(limit, 1), MAX_PAGE_ROWS)
    offset = max(offset, 0)
    with open_for_reading(path) as handle:
        reader = _csv_rows(handle) if Path(path).suffix.lower() == ".csv" else _jsonl_rows(handle)
        with closing(reader):  # before the file closes: the CSV reader lets go of it then
            found = list(islice(reader, offset, offset + limit + 1))
    rows = [_shortened(row, text_limit) for row in found[:limit]]
    return RowPage(offset=offset, rows=rows, next_offset=offset + limit if len(found) > limit else None)


def _shortened(row: ResultRow, text_limit: int) -> ResultRow:
    shorter = {"input": truncate(row.input, text_limit), "content": truncate(row.content, text_limit)}
    return row.model_copy(update=shorter)


def _jsonl_rows(handle: IO[bytes]) -> Generator[ResultRow, None, None]:
    for line in handle:
        if not line.strip():
            continue
        try:
            yield ResultRow.model_validate(orjson.loads(line))
        except (orjson.JSONDecodeError, ValidationError):
            continue  # a results file this program wrote has none; another file's odd line is not a row


def _csv_rows(handle: IO[bytes]) -> Generator[ResultRow, None, None]:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    try:
        for record in csv.DictReader(text):
            try:
                yield _csv_row(record)
            except ValidationError:
                continue
    finally:
        text.detach()  # the caller owns the file and closes it


def _csv_row(record: dict[str, str]) -> ResultRow:
    usage = {name: int(record[name]) for name in USAGE_COLUMNS if (record.get(name) or "").isdigit()}
    code, message = record.get("error_code") or None, record.get("error_message") or None
    return ResultRow.model_validate(
        {
            "custom_id": record.get("custom_id") or "",
            "status": record.get("status"),
            "input": record.get("input") or None,
            "content": record.get("content") or None,
            "finish_reason": record.get("finish_reason") or None,
            "usage": Usage(**usage) if usage else None,
            "error": ResultError(code=code, message=message) if code or message else None,
        }
    )
