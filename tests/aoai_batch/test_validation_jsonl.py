"""The JSONL helpers: bounded line reading and where each request of a batch file lives."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from aoai_batch.errors import InvalidInput
from aoai_batch.jsonl import iter_lines, iter_request_offsets, read_request


def test_request_offsets_point_at_each_requests_line(tmp_path: Path) -> None:
    lines = [
        b'\xef\xbb\xbf{"custom_id": "a", "n": 1}\n',
        b"\n",
        b"not json\n",
        b'{"custom_id": 5}\n',
        b"[1]\n",
        b'{"custom_id": "b", "n": 2}\r\n',
        b'{"custom_id": "c", "n": 3}',
    ]
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"".join(lines))

    found = list(iter_request_offsets(path))

    assert [(item.custom_id, item.line) for item in found] == [("a", 1), ("b", 6), ("c", 7)]
    for item, n in zip(found, (1, 2, 3), strict=True):
        assert read_request(path, item.offset, item.length) == {"custom_id": item.custom_id, "n": n}
    with open(path, "rb") as handle:
        data = handle.read()
    assert orjson.loads(data[found[1].offset : found[1].offset + found[1].length]) == {"custom_id": "b", "n": 2}


def test_lines_longer_than_the_limit_are_skipped_not_kept() -> None:
    handle = io.BytesIO(b"short\n" + b"x" * 100 + b"\nend")

    lines = list(iter_lines(handle, max_line_bytes=10))

    assert [(line.number, line.offset, line.length, line.data) for line in lines] == [
        (1, 0, 6, b"short\n"),
        (2, 6, 101, None),
        (3, 107, 3, b"end"),
    ]


def test_offsets_of_a_missing_file_are_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        list(iter_request_offsets(tmp_path / "missing.jsonl"))
