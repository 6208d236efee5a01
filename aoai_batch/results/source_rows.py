"""The link from a batch file built from rows back to those rows, so results carry the rows' own columns.

A built file (and a run's input) has one request per source row, in the rows' order. The link says which
rows (`first_row`, `rows`: a split build's later parts start further down) of which source file, and the
source's size and modification time when it was read: a source changed since is noticed (`stale_reason`)
and said in the summary's note, never joined wrongly.

Where links live: a run's `source.json` in its folder; for `build_batch_file`, one small JSON file per built
file under `home/sources/`, named by a hash of the built file's path (`link_path`). Files, not registry rows:
a link is written once by the build and read by a fetch, and a file of its own needs no schema change.

In the results: JSONL rows get `"source": {the row}`; CSV gets the source's columns after the answer
columns, spreadsheet-safe, a name that clashes with one of them prefixed `source_`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer
from aoai_batch.sources import iter_rows, source_format

SOURCES_FOLDER = "sources"
SOURCE_PREFIX = "source_"


@dataclasses.dataclass(frozen=True, slots=True)
class SourceLink:
    """Rows `first_row` .. `first_row + rows - 1` (0-based) of the source at `path`, as it was when read."""

    path: str
    size: int
    mtime_ns: int
    first_row: int
    rows: int
    built_path: str | None = None  # the batch file built from them (None for a run's input)
    built_bytes: int | None = None

    @classmethod
    def of(
        cls,
        source: Path,
        *,
        rows: int,
        first_row: int = 0,
        built_path: Path | None = None,
        built_bytes: int | None = None,
    ) -> SourceLink:
        stat = Path(source).stat()
        return cls(
            path=str(Path(source).resolve()),
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            first_row=first_row,
            rows=rows,
            built_path=str(built_path) if built_path is not None else None,
            built_bytes=built_bytes,
        )

    def stale_reason(self, *, requests: int | None = None) -> str | None:
        """Why the rows cannot be joined (the source is gone or changed, or counts differ); None when they can."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return f"The source rows ({self.path}) are gone, so their columns are not in the results."
        if stat.st_size != self.size or stat.st_mtime_ns != self.mtime_ns:
            return f"The source {self.path} changed since the batch was built, so its columns are not in the results."
        if requests is not None and requests != self.rows:
            return (
                f"The input has {requests} requests but was built from {self.rows} rows of {self.path}, "
                "so the source columns are not in the results."
            )
        return None

    def rows_in_order(self) -> Iterator[dict[str, Any]]:
        """The linked rows, in order (read again from the source)."""
        rows = (row for _, row in iter_rows(Path(self.path)))
        return itertools.islice(rows, self.first_row, self.first_row + self.rows)


def save_link(path: Path, link: SourceLink) -> None:
    with atomic_writer(Path(path), overwrite=True) as handle:
        handle.write(orjson.dumps(dataclasses.asdict(link)))


def load_link(path: Path) -> SourceLink | None:
    """The link saved at `path`; None when there is none, or it cannot be read (it is only a convenience)."""
    try:
        data = orjson.loads(Path(path).read_bytes())
        return SourceLink(**data)
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None


def link_path(home: Path, built_path: Path) -> Path:
    """Where the link of the batch file `built_path` is kept under `home`."""
    key = hashlib.sha256(str(Path(built_path).resolve()).encode()).hexdigest()[:32]
    return Path(home) / SOURCES_FOLDER / f"{key}.json"


def save_build_links(home: Path, source: Path, files: Iterable[tuple[Path, int, int]]) -> None:
    """One link per built file (`path`, `requests`, `bytes`), each to its own run of rows of `source`."""
    first = 0
    for built, requests, size in files:
        link = SourceLink.of(source, rows=requests, first_row=first, built_path=built, built_bytes=size)
        save_link(link_path(home, built), link)
        first += requests


def forget_build_links(home: Path, built: Iterable[Path]) -> None:
    """Remove the links of files built again from something else than rows."""
    for path in built:
        link_path(home, path).unlink(missing_ok=True)


def build_link_for(home: Path, input_path: Path, *, input_bytes: int) -> SourceLink | None:
    """The link of a built batch file, if this program built it from rows and it is the same file (its size)."""
    link = load_link(link_path(home, input_path))
    if link is None or link.built_bytes != input_bytes:
        return None
    return link


class SourceColumns:
    """The source columns of a results CSV: their header names (clashes prefixed) and each row's cells."""

    def __init__(self, names: list[str], taken: Iterable[str]) -> None:
        used = set(taken)
        self.names = names
        self.header: list[str] = []
        for name in names:
            shown = name
            while shown in used:
                shown = SOURCE_PREFIX + shown
            used.add(shown)
            self.header.append(shown)

    @classmethod
    def of(cls, link: SourceLink, taken: Iterable[str]) -> SourceColumns:
        """The columns of the linked rows: a CSV's header, else every key in order of first appearance."""
        names: dict[str, None] = {}
        rows = link.rows_in_order()
        if source_format(Path(link.path)) == "csv":
            rows = itertools.islice(rows, 1)
        for row in rows:
            names.update((key, None) for key in row if isinstance(key, str))
        return cls(list(names), taken)

    def cells(self, row: dict[str, Any]) -> list[str | None]:
        return [cell_text(row.get(name)) for name in self.names]


def cell_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def source_row_json(row: dict[str, Any]) -> bytes:
    """A source row as the JSON of a results row's `source` (CSV's extra cells, keyed None, dropped)."""
    try:
        return orjson.dumps({key: value for key, value in row.items() if isinstance(key, str)})
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise InvalidInput(f"A source row cannot be written as JSON ({exc}).") from exc
