"""A batch built from rows brings the rows' own columns back with its results: build -> upload -> fetch.

Real parts: the builder writes the file and its link to the rows under the home folder, the service uploads
it to the emulator, the batch runs on the emulator's fake clock, and fetch_results joins the rows back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

from aoai_batch.builder import build_batch_file
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.models import FetchSummary
from aoai_batch.results.source_rows import SourceLink, link_path, load_link
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings

ROWS = [
    {"id": "a1", "text": "first", "content": "=SUM(A1)", "score": "3"},
    {"id": "a2", "text": "second", "content": "plain", "score": "4"},
    {"id": "a3", "text": "third", "content": "x", "score": "5"},
]


@pytest.fixture
async def service(tmp_path: Path, emulator: Emulator, fake_clock: FakeClock) -> AsyncIterator[BatchService]:
    async def sleep(seconds: float) -> None:
        fake_clock.advance(seconds)
        await anyio.lowlevel.checkpoint()

    settings = Settings.model_validate(
        {"home": tmp_path / "home", "provider": "emulator", "api_key": emulator.key, "workspace": str(tmp_path)}
    )
    async with BatchService.open(settings, transport=emulator.transport(), sleep=sleep, clock=fake_clock.now) as opened:
        yield opened


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def build(service: BatchService, source: Path, output: Path, **extra: Any) -> list[Path]:
    result = build_batch_file(
        deployment="gpt-4o-mini",
        output_path=output,
        source_path=source,
        template="Answer: {text}",
        id_field="id",
        sources_home=service.sources_home,
        **{**service.file_rules.keywords(), **extra},
    )
    return [Path(file.path) for file in result.files]


def read_rows(path: str | None) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in Path(str(path)).read_bytes().splitlines()]


def read_table(path: str | None) -> list[list[str]]:
    return list(csv.reader(io.StringIO(Path(str(path)).read_text(encoding="utf-8"))))


async def run_and_fetch(service: BatchService, path: Path, out: Path, **kw: Any) -> FetchSummary:
    uploaded = await service.upload_file(path)
    batch = await service.create_batch(uploaded.file.id)
    with anyio.fail_after(30):
        while not batch.terminal:
            batch = await service.get_batch(batch.id, wait_seconds=50)
        return await service.fetch_results(batch.id, output_dir=out, **kw)


async def test_a_csv_built_batch_gets_its_rows_columns_in_the_csv_results(
    service: BatchService, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "rows.csv", ROWS)
    [built] = build(service, source, tmp_path / "rows.batch.jsonl")

    summary = await run_and_fetch(service, built, tmp_path / "out", format="csv")

    assert summary.note is None
    table = read_table(summary.results_path)
    header = table[0]
    # `content` clashes with the answer's column: the source's is prefixed.
    assert header[-4:] == ["id", "text", "source_content", "score"]
    rows = [dict(zip(header, row, strict=True)) for row in table[1:]]
    assert [row["custom_id"] for row in rows] == ["a1", "a2", "a3"]
    assert [row["status"] for row in rows] == ["succeeded"] * 3
    assert rows[0]["source_content"] == "'=SUM(A1)"  # spreadsheet-safe
    assert [row["score"] for row in rows] == ["3", "4", "5"]
    assert rows[0]["content"]  # the emulator's answer beside the row


async def test_jsonl_results_carry_each_row_as_source_even_across_split_files(
    service: BatchService, tmp_path: Path
) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_bytes(b"".join(orjson.dumps({**row, "score": int(row["score"])}) + b"\n" for row in ROWS))
    first, second = build(service, source, tmp_path / "rows.batch.jsonl", max_requests=2)

    summary = await run_and_fetch(service, second, tmp_path / "out")

    rows = read_rows(summary.results_path)
    assert [row["custom_id"] for row in rows] == ["a3"]
    assert rows[0]["source"] == {"id": "a3", "text": "third", "content": "x", "score": 5}
    link = load_link(link_path(service.sources_home, first))
    assert link is not None
    assert (link.first_row, link.rows) == (0, 2)


async def test_a_source_changed_after_the_build_is_noted_and_not_joined(service: BatchService, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "rows.csv", ROWS)
    [built] = build(service, source, tmp_path / "rows.batch.jsonl")
    write_csv(source, [{**row, "text": row["text"] + "!"} for row in ROWS])

    summary = await run_and_fetch(service, built, tmp_path / "out")

    rows = read_rows(summary.results_path)
    assert "source" not in rows[0]
    assert summary.note is not None
    assert "changed since the batch was built" in summary.note


async def test_a_batch_not_built_from_rows_has_no_source_columns(service: BatchService, tmp_path: Path) -> None:
    result = build_batch_file(
        deployment="gpt-4o-mini",
        output_path=tmp_path / "p.jsonl",
        prompts=["one"],
        sources_home=service.sources_home,
        **service.file_rules.keywords(),
    )
    summary = await run_and_fetch(service, Path(result.files[0].path), tmp_path / "out")

    rows = read_rows(summary.results_path)
    assert set(rows[0]) == {"custom_id", "status", "input", "content", "finish_reason", "usage", "error"}
    assert not (service.sources_home / "sources").exists()


def test_a_file_rebuilt_from_prompts_loses_its_old_link(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "rows.csv", ROWS)
    home, output = tmp_path / "home", tmp_path / "b.jsonl"
    common: dict[str, Any] = {"deployment": "d", "output_path": output, "max_requests": 10, "max_bytes": 10**6}
    build_batch_file(source_path=source, template="{text}", sources_home=home, **common)
    assert load_link(link_path(home, output)) is not None

    build_batch_file(prompts=["a", "b", "c"], overwrite=True, sources_home=home, **common)

    assert load_link(link_path(home, output)) is None


def test_a_link_says_why_it_cannot_be_used(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "rows.csv", ROWS)
    link = SourceLink.of(source, rows=3)
    assert link.stale_reason(requests=3) is None
    assert link.stale_reason(requests=2) is not None
    assert "from 3 rows" in str(link.stale_reason(requests=2))
    source.unlink()
    assert "gone" in str(link.stale_reason())
    assert load_link(tmp_path / "nothing.json") is None
