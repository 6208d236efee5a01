"""The JSONL helpers: bounded line reading, and opening a file with an error that says why it cannot be read."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from aoai_batch.errors import InvalidInput
from aoai_batch.jsonl import iter_lines, open_for_reading


def test_lines_longer_than_the_limit_are_skipped_not_kept() -> None:
    handle = io.BytesIO(b"short\n" + b"x" * 100 + b"\nend")

    lines = list(iter_lines(handle, max_line_bytes=10))

    assert [(line.number, line.offset, line.length, line.data) for line in lines] == [
        (1, 0, 6, b"short\n"),
        (2, 6, 101, None),
        (3, 107, 3, b"end"),
    ]


@pytest.mark.parametrize("name", ["missing.jsonl", "folder"])
def test_a_missing_file_or_a_folder_is_invalid_input(tmp_path: Path, name: str) -> None:
    (tmp_path / "folder").mkdir()

    with pytest.raises(InvalidInput):
        open_for_reading(tmp_path / name)
