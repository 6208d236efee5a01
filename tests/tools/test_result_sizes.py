from __future__ import annotations

from pathlib import Path

from mcp import Client

from aoai_batch.emulator import Emulator
from aoai_batch.models import Batch, BatchError, BatchPage, FetchSummary, ResultRow
from server.app import build_server
from tests.support.mcp import error_kind, make_settings
from tools.deps import MAX_RESULT_CHARS, result_chars
from tools.jobs import MAX_LISTED_ERRORS, fitted, trimmed
from tools.results import fitted as fitted_summary


def big_batch(n: int, errors: int = 0) -> Batch:
    return Batch(
        id=f"batch_{n:04}",
        status="failed",
        terminal=True,
        backend="emulator",
        metadata={f"k{i}": "v" * 400 for i in range(15)},
        errors=[BatchError(code="invalid_json_line", message="x" * 200, line=i) for i in range(errors)],
    )


def test_a_full_page_of_large_batches_is_cut_to_fit_and_continues_where_it_stopped() -> None:
    page = BatchPage(batches=[big_batch(n) for n in range(100)], has_more=False, last_id="batch_0099")
    result = fitted(page)
    assert result_chars(result) <= MAX_RESULT_CHARS
    assert result.has_more is True
    assert 0 < len(result.batches) < 100
    assert result.last_id == result.batches[-1].id


def test_a_small_page_is_left_as_it_is() -> None:
    page = BatchPage(
        batches=[Batch(id="batch_1", status="completed", terminal=True, backend="emulator")], has_more=False
    )
    assert fitted(page) == page


def test_a_batch_with_thousands_of_errors_lists_the_first_few() -> None:
    batch = trimmed(big_batch(1, errors=5000))
    assert len(batch.errors) == MAX_LISTED_ERRORS
    assert result_chars(batch) <= MAX_RESULT_CHARS


def test_a_preview_of_huge_answers_is_shortened_to_fit() -> None:
    rows = [ResultRow(custom_id=f"t{n}", status="succeeded", input="q" * 5000, content="a" * 50_000) for n in range(20)]
    summary = FetchSummary(batch_id="batch_1", batch_status="completed", format="jsonl", preview=rows)
    result = fitted_summary(summary)
    assert result_chars(result) <= MAX_RESULT_CHARS
    assert result.preview
    assert all(len(row.content or "") < 50_000 for row in result.preview)


async def test_an_authentication_failure_never_shows_the_key(tmp_path: Path, emulator: Emulator) -> None:
    settings = make_settings(tmp_path, api_key="wrong-key-value-123")
    async with Client(build_server(settings, transport=emulator.transport()), mode="legacy") as client:
        result = await client.call_tool("list_batches", {})
    assert error_kind(result) == "auth"
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert "wrong-key-value-123" not in text
    assert "test-key" not in text
