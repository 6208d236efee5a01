"""Reading a JSONL file line by line with bounded memory, and finding each request's place in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from aoai_batch.errors import InvalidInput

BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20
# A line longer than this is never parsed: it would cost memory in proportion to its size, and no
# real request (even one with a large base64 image) comes near it.
MAX_LINE_BYTES = 64 << 20


class Line(NamedTuple):
    """One physical line: its 1-based number, byte offset and length (newline included).

    `data` is None when the line is longer than the reader's limit (it was skipped, not kept).
    """

    number: int
    offset: int
    length: int
    data: bytes | None


class RequestOffset(NamedTuple):
    """Where one request of a batch file lives: read `length` bytes at `offset` to get its line."""

    custom_id: str
    offset: int
    length: int
    line: int


def open_for_reading(path: Path) -> IO[bytes]:
    """Open `path` in binary mode, or raise InvalidInput saying why it cannot be read."""
    path = Path(path)
    try:
        return open(path, "rb", buffering=READ_BUFFER)
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path} does not exist; check the path.") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"{path} is a folder, not a file; give the path of a .jsonl file.") from exc
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read ({exc.strerror}); check its permissions.") from exc


def iter_lines(handle: IO[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Yield every line of `handle`; memory stays bounded by `max_line_bytes` whatever the file."""
    number = 0
    offset = 0
    readline = handle.readline
    while True:
        data = readline(max_line_bytes)
        if not data:
            return
        number += 1
        length = len(data)
        if length == max_line_bytes and not data.endswith(b"\n"):
            length += skip_rest_of_line(handle, max_line_bytes)
            yield Line(number, offset, length, None)
        else:
            yield Line(number, offset, length, data)
        offset += length


def skip_rest_of_line(handle: IO[bytes], chunk: int) -> int:
    """Read past the end of the current line, `chunk` bytes at a time; returns the bytes skipped."""
    skipped = 0
    while True:
        data = handle.readline(chunk)
        skipped += len(data)
        if not data or data.endswith(b"\n"):
            return skipped


def iter_request_offsets(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[RequestOffset]:
    """Yield (custom_id, offset, length, line) for every line that is a JSON object with a string custom_id.

    Lines that are blank, not JSON or without a custom_id are skipped; a BOM on the first line is
    not part of that line's offset. Raises InvalidInput if the file cannot be opened.
    """
    with open_for_reading(path) as handle:
        for line in iter_lines(handle, max_line_bytes):
            data = line.data
            if data is None:
                continue
            offset, length = line.offset, line.length
            if line.number == 1 and data.startswith(BOM):
                data, offset, length = data[3:], offset + 3, length - 3
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            custom_id = obj.get("custom_id") if type(obj) is dict else None
            if type(custom_id) is str and custom_id:
                yield RequestOffset(custom_id, offset, length, line.number)


def read_request(path: Path, offset: int, length: int) -> object:
    """The parsed JSON of the line found by `iter_request_offsets` (one seek, one read)."""
    with open_for_reading(path) as handle:
        handle.seek(offset)
        return orjson.loads(handle.read(length))
