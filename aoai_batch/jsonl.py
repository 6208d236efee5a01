"""Reading a JSONL file line by line with bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

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
