"""Pages of a results file (aoai_batch/results/pages.py): what the job view scrolls through."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from aoai_batch.errors import InvalidInput
from aoai_batch.models import ResultError, ResultRow, Usage
from aoai_batch.results.csv_table import CSV_COLUMNS
from aoai_batch.results.pages import MAX_PAGE_ROWS, read_page


def rows(count: int) -> list[ResultRow]:
    return [
        ResultRow(custom_id=f"r{n}", status="succeeded", input=f"question {n}", content=f"answer {n}")
        for n in range(count)
    ]


def write_jsonl(path: Path, items: list[ResultRow]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row.model_dump(mode="json")) + b"\n" for row in items))
    return path


@pytest.mark.parametrize(
    ("offset", "limit", "ids", "next_offset"),
    [
        (0, 2, ["r0", "r1"], 2),
        (2, 2, ["r2", "r3"], 4),
        (4, 2, ["r4"], None),
        (3, 2, ["r3", "r4"], None),
        (9, 2, [], None),
    ],
)
def test_a_page_is_the_rows_from_its_offset_and_says_where_the_next_starts(
    tmp_path: Path, offset: int, limit: int, ids: list[str], next_offset: int | None
) -> None:
    page = read_page(write_jsonl(tmp_path / "results.jsonl", rows(5)), offset=offset, limit=limit)
    assert [row.custom_id for row in page.rows] == ids
    assert (page.offset, page.next_offset) == (offset, next_offset)


def test_a_page_is_never_larger_than_its_maximum_and_its_texts_are_cut(tmp_path: Path) -> None:
    long = [ResultRow(custom_id=f"r{n}", status="succeeded", content="x" * 500) for n in range(MAX_PAGE_ROWS + 5)]
    page = read_page(write_jsonl(tmp_path / "results.jsonl", long), limit=10 * MAX_PAGE_ROWS, text_limit=50)
    assert len(page.rows) == MAX_PAGE_ROWS
    assert page.next_offset == MAX_PAGE_ROWS
    assert all(row.content is not None and len(row.content) == 50 for row in page.rows)


def test_lines_that_are_not_rows_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'not json\n\n{"no": "custom_id"}\n' + orjson.dumps(rows(1)[0].model_dump()) + b"\n")
    assert [row.custom_id for row in read_page(path).rows] == ["r0"]


def test_a_csv_results_file_reads_back_as_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    header = ",".join(CSV_COLUMNS)
    path.write_text(
        f'{header}\r\nr0,succeeded,Hi,"Hello, you",stop,3,2,5,,\r\nr1,failed,Yo,,,,,,server_error,boom\r\n'
        "r2,bogus,,,,,,,,\r\n",
        encoding="utf-8",
    )
    page = read_page(path)
    assert page.rows == [
        ResultRow(
            custom_id="r0",
            status="succeeded",
            input="Hi",
            content="Hello, you",
            finish_reason="stop",
            usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
        ),
        ResultRow(custom_id="r1", status="failed", input="Yo", error=ResultError(code="server_error", message="boom")),
    ]


def test_a_missing_results_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        read_page(tmp_path / "gone.jsonl")
