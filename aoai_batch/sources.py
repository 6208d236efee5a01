"""Rows of a source file for the builder: CSV (with a header), JSONL (one object a line) or a JSON array."""

from __future__ import annotations

import csv
import io
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson

from aoai_batch.errors import InvalidInput
from aoai_batch.jsonl import iter_lines, open_for_reading

SourceFormat = Literal["csv", "jsonl", "json"]
SUFFIXES: dict[str, SourceFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
# Python's csv module refuses fields over 128 KiB by default; a prompt may be longer than that.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def source_format(path: Path) -> SourceFormat:
    """The format by suffix, else by the first character: `[` a JSON array, `{` JSONL, anything else CSV."""
    found = SUFFIXES.get(path.suffix.lower())
    if found:
        return found
    with open_for_reading(path) as handle:
        start = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"["):
        return "json"
    return "jsonl" if start.startswith(b"{") else "csv"


def iter_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) for each row of `path`; the number is the data row's (1-based), as a person counts them.

    Opens the file and reads the first row at once: a source with no rows is an InvalidInput here, and
    a row that cannot be read is one when it is reached.
    """
    path = Path(path)
    rows = _READERS[source_format(path)](path)
    first = next(rows, None)
    if first is None:
        raise InvalidInput(f"{path} has no rows; give a file with at least one row of data.")
    return enumerate(itertools.chain((first,), rows), start=1)


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open_for_reading(path) as raw:
        handle = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is not None:
                yield from _dict_rows(header, reader)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path} is not UTF-8 text (near row {reader.line_num}); save it as UTF-8.") from exc
        except csv.Error as exc:
            raise InvalidInput(f"{path} line {reader.line_num} is not valid CSV ({exc}).") from exc


def _dict_rows(header: list[str], reader: Iterator[list[str]]) -> Iterator[dict[str, Any]]:
    """csv.DictReader's rows (blank lines skipped, extra cells under None, missing ones None), made without its
    per-row Python overhead: a run reads a million of them, twice."""
    width = len(header)
    for cells in reader:
        if len(cells) == width:
            yield dict(zip(header, cells, strict=True))
        elif cells:
            row: dict[Any, Any] = dict(zip(header, cells, strict=False))
            if len(cells) > width:
                row[None] = cells[width:]
            else:
                row.update(dict.fromkeys(header[len(cells) :]))
            yield row


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open_for_reading(path) as handle:
        for line in iter_lines(handle):
            data = line.data
            if data is None:
                raise InvalidInput(f"{path} line {line.number} is too long to read.")
            if line.number == 1:
                data = data.removeprefix(b"\xef\xbb\xbf")
            if not data.strip():
                continue
            try:
                row = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"{path} line {line.number} is not valid JSON ({exc}).") from exc
            yield _as_row(row, f"{path} line {line.number}")


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc}).") from exc
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read ({exc.strerror}).") from exc
    if not isinstance(data, list):
        raise InvalidInput(f"{path} must hold a JSON array of objects (one per row).")
    for index, row in enumerate(data, start=1):
        yield _as_row(row, f"{path} item {index}")


def _as_row(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} is not an object; every row must be an object of column: value.")
    return value


_READERS = {"csv": _csv_rows, "jsonl": _jsonl_rows, "json": _json_rows}
