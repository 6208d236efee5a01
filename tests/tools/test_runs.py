"""The runs' tools through a real MCP client, on the in-process emulator (its clock moved by the tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from aoai_batch.emulator import FakeClock
from aoai_batch.errors import InvalidInput
from aoai_batch.models import ResultCounts
from aoai_batch.runs.models import Run, RunPage, RunResultRow, RunResultsSummary, ShardView
from aoai_batch.runs.source import is_batch_file
from aoai_batch.settings import Settings
from server.state import AppState
from tests.support.batch_files import request_line, write_lines
from tests.support.clock import HOURS
from tests.support.mcp import MODES, POLL, WAIT, error_details, error_kind, make_settings, structured
from tests.support.runs import SHARD_REQUESTS, result_rows
from tools.deps import MAX_RESULT_CHARS, result_chars
from tools.runs import fitted, fitted_page, fitted_summary

REQUESTS = 25  # three shards of SHARD_REQUESTS


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_requests=SHARD_REQUESTS)


def requests(count: int = REQUESTS) -> list[dict[str, Any]]:
    return [{"custom_id": f"q-{n:03}", "messages": [{"role": "user", "content": f"q {n}"}]} for n in range(count)]


async def finished(client: Client, run_id: str, clock: FakeClock) -> dict[str, Any]:
    """The run once the server's background task has taken it to its end (the clock moved between looks)."""
    with anyio.fail_after(WAIT):
        while True:
            run = structured(await client.call_tool("get_run", {"run_id": run_id}))
            if run["terminal"]:
                return run
            clock.advance(HOURS)
            await anyio.sleep(POLL)


@pytest.mark.parametrize("mode", MODES)
async def test_a_run_goes_from_start_to_merged_results_in_input_order(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock, mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        started = structured(
            await client.call_tool(
                "start_run", {"deployments": ["gpt-4o-mini", "gpt-4o"], "requests": requests(), "name": "faq"}
            )
        )
        done = await finished(client, started["id"], fake_clock)
        summary = structured(
            await client.call_tool("fetch_run_results", {"run_id": started["id"], "output_dir": "out", "preview": 2})
        )
    assert started["id"].startswith("run_")
    assert started["status"] == "running"
    assert started["name"] == "faq"
    assert started["requests"] == REQUESTS
    assert sum(started["shard_counts"].values()) == 3
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": REQUESTS, "completed": REQUESTS, "failed": 0}
    assert summary["run_id"] == started["id"]
    assert summary["counts"]["succeeded"] == REQUESTS
    assert len(summary["preview"]) == 2
    assert Path(summary["results_path"]).parent == workspace / "out"
    rows = result_rows(summary["results_path"])
    assert [row["custom_id"] for row in rows] == [f"q-{n:03}" for n in range(REQUESTS)]


async def test_a_batch_file_given_as_source_path_is_run_as_it_is(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock
) -> None:
    write_lines(workspace / "big.jsonl", *(request_line(f"line-{n}") for n in range(12)))
    async with Client(app, mode="legacy") as client:
        started = structured(
            await client.call_tool("start_run", {"deployments": ["gpt-4o-mini"], "source_path": "big.jsonl"})
        )
        done = await finished(client, started["id"], fake_clock)
    assert started["source_path"] is None  # a batch file is the run's input, not rows to build from
    assert started["requests"] == 12
    assert done["status"] == "completed"


async def test_get_run_waits_for_a_change_and_reports_progress(app: MCPServer[AppState], fake_clock: FakeClock) -> None:
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))
        fake_clock.advance(HOURS)

    async with Client(app, mode="legacy") as client:
        started = structured(
            await client.call_tool("start_run", {"deployments": ["gpt-4o-mini"], "requests": requests(5)})
        )
        with anyio.fail_after(WAIT):
            waited = structured(
                await client.call_tool(
                    "get_run", {"run_id": started["id"], "wait_seconds": 50}, progress_callback=on_progress
                )
            )
    assert waited["updated_at"] != started["updated_at"]
    assert updates
    assert all(total == 50 for _, total, _ in updates)
    assert all(message and started["id"] in message for _, _, message in updates)


async def test_list_runs_pages_newest_first_without_shards(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        ids = [
            structured(await client.call_tool("start_run", {"deployments": ["gpt-4o"], "requests": requests(3)}))["id"]
            for _ in range(3)
        ]
        first = structured(await client.call_tool("list_runs", {"limit": 2}))
        rest = structured(await client.call_tool("list_runs", {"limit": 2, "after": first["last_id"]}))
    assert [run["id"] for run in first["runs"]] == ids[::-1][:2]
    assert first["has_more"] is True
    assert [run["id"] for run in rest["runs"]] == ids[:1]
    assert all(run["shards"] == [] for run in first["runs"])


async def test_the_same_idempotency_key_returns_the_first_run(app: MCPServer[AppState]) -> None:
    arguments = {"deployments": ["gpt-4o"], "requests": requests(3), "idempotency_key": "nightly-1"}
    async with Client(app, mode="legacy") as client:
        first = structured(await client.call_tool("start_run", arguments))
        again = structured(await client.call_tool("start_run", arguments))
        listed = structured(await client.call_tool("list_runs", {}))
    assert again["id"] == first["id"]
    assert [run["id"] for run in listed["runs"]] == [first["id"]]


async def test_cancel_run_stops_it_and_a_finished_run_cannot_be_cancelled(
    app: MCPServer[AppState], fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        started = structured(
            await client.call_tool("start_run", {"deployments": ["gpt-4o-mini"], "requests": requests()})
        )
        cancelling = structured(await client.call_tool("cancel_run", {"run_id": started["id"]}))
        done = await finished(client, started["id"], fake_clock)
        again = await client.call_tool("cancel_run", {"run_id": started["id"]})
    assert cancelling["status"] in {"cancelling", "cancelled"}
    assert done["status"] == "cancelled"
    assert error_details(again) == {"kind": "rejected", "code": "run_not_cancellable"}


async def test_results_of_a_running_run_are_not_ready_with_advice_to_wait(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        started = structured(
            await client.call_tool("start_run", {"deployments": ["gpt-4o-mini"], "requests": requests()})
        )
        early = await client.call_tool("fetch_run_results", {"run_id": started["id"]})
    assert error_kind(early) == "not_ready"
    assert "get_run" in early.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("arguments", "kind"),
    [
        ({"deployments": ["gpt-4o"], "requests": requests(2), "retries": 11}, "invalid_input"),
        ({"deployments": [], "requests": requests(2)}, "invalid_input"),
        ({"deployments": ["no-such-deployment"], "requests": requests(2)}, "invalid_input"),
        ({"deployments": ["gpt-4o"], "source_path": "../outside.jsonl"}, "invalid_input"),
        ({"deployments": ["gpt-4o"], "source_path": "missing.csv"}, "invalid_input"),
    ],
)
async def test_a_bad_start_is_a_tool_error_and_starts_nothing(
    app: MCPServer[AppState], workspace: Path, arguments: dict[str, Any], kind: str
) -> None:
    async with Client(app, mode="legacy") as client:
        refused = await client.call_tool("start_run", arguments)
        listed = structured(await client.call_tool("list_runs", {}))
    assert error_kind(refused) == kind
    assert listed["runs"] == []


async def test_an_unknown_run_is_not_found(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        results = [
            await client.call_tool(tool, {"run_id": "run_000000000000000000000000"})
            for tool in ("get_run", "cancel_run", "fetch_run_results")
        ]
    assert [error_kind(result) for result in results] == ["not_found"] * 3


def test_a_batch_file_is_told_apart_from_rows(tmp_path: Path) -> None:
    batch = write_lines(tmp_path / "batch.jsonl", request_line("a"), request_line("b"))
    rows = write_lines(tmp_path / "rows.jsonl", {"custom_id": "a", "text": "hello", "url": "x", "method": "y"})
    csv = tmp_path / "rows.csv"
    csv.write_text("custom_id,method,url,body\na,POST,/chat/completions,{}\n", encoding="utf-8")
    array = tmp_path / "rows.json"
    array.write_text('[{"custom_id": "a", "method": "POST", "url": "/x", "body": {}}]', encoding="utf-8")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n", encoding="utf-8")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + batch.read_bytes())

    assert is_batch_file(batch) is True
    assert is_batch_file(bom) is True
    assert is_batch_file(rows) is False
    assert is_batch_file(csv) is False
    assert is_batch_file(array) is False
    assert is_batch_file(blank) is False


def test_a_source_that_cannot_be_read_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        is_batch_file(tmp_path)  # a folder


def test_a_first_line_too_long_to_read_whole_is_judged_by_its_keys(tmp_path: Path) -> None:
    huge = "x" * (2 << 20)
    path = tmp_path / "images.jsonl"
    path.write_text(
        f'{{"custom_id": "a", "method": "POST", "url": "/chat/completions", "body": {{"image": "{huge}"}}}}\n',
        encoding="utf-8",
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(f'{{"custom_id": "a", "text": "{huge}"}}\n', encoding="utf-8")

    assert is_batch_file(path) is True
    assert is_batch_file(rows) is False


def a_run(run_id: str = "run_1", *, shards: int = 20, errors: int = 0, error_chars: int = 10) -> Run:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    views = [
        ShardView(index=n, kind="input", requests=10, estimated_tokens=100, state="failed", error="e" * error_chars)
        for n in range(shards)
    ]
    return Run(
        id=run_id,
        status="failed",
        terminal=True,
        created_at=when,
        updated_at=when,
        endpoint="/chat/completions",
        deployments=["gpt-4o-mini"],
        retries=1,
        input_path="/x/input.jsonl",
        requests=10 * shards,
        estimated_input_tokens=100 * shards,
        shard_counts={"failed": shards},
        shards=views,
        errors=[f"shard {n}: {'x' * 200}" for n in range(errors)],
        backend="emulator",
    )


def test_a_run_too_large_for_a_result_lists_fewer_shards_and_errors() -> None:
    small = a_run()
    large = a_run(errors=200, error_chars=2_000)

    trimmed = fitted(large)

    assert fitted(small) == small
    assert result_chars(trimmed) <= MAX_RESULT_CHARS
    assert len(trimmed.errors) == 20
    assert 3 <= len(trimmed.shards) < 20
    assert trimmed.shard_counts == large.shard_counts  # the counts stay whole


def test_a_page_of_runs_drops_their_shards_and_is_cut_to_size() -> None:
    page = RunPage(runs=[a_run(f"run_{n}", errors=3, error_chars=500) for n in range(100)], has_more=False)

    fitted_runs = fitted_page(page)

    assert result_chars(fitted_runs) <= MAX_RESULT_CHARS
    assert fitted_runs.has_more is True
    assert fitted_runs.last_id == fitted_runs.runs[-1].id
    assert all(run.shards == [] for run in fitted_runs.runs)
    small = RunPage(runs=[a_run()], has_more=False)
    assert fitted_page(small).runs[0].shards == []
    assert fitted_page(small).has_more is False


def test_a_results_preview_too_large_is_shortened() -> None:
    rows = [
        RunResultRow(custom_id=f"r{n}", status="succeeded", input="i" * 5_000, content="c" * 5_000, source={"a": "b"})
        for n in range(20)
    ]
    summary = RunResultsSummary(
        format="jsonl", run_id="run_1", run_status="completed", counts=ResultCounts(succeeded=20), preview=rows
    )

    shorter = fitted_summary(summary)

    assert result_chars(shorter) <= MAX_RESULT_CHARS
    assert shorter.preview
    assert all(row.source is None and len(row.content or "") <= 300 for row in shorter.preview)
    assert fitted_summary(shorter) == shorter
