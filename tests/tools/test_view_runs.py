"""The job view of a run (tools/view.py): view_job with run_id through a real MCP client, on the in-process
emulator, while the server's runs watcher takes the run along (the tests move the emulator's clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from aoai_batch.emulator import FakeClock
from aoai_batch.settings import Settings
from server.state import AppState
from tests.support.apps import APPS_HOST
from tests.support.clock import HOURS
from tests.support.mcp import POLL, WAIT, error_kind, make_settings, structured
from tests.support.runs import SHARD_REQUESTS
from tools.view import PAGE_ROWS

REQUESTS = PAGE_ROWS + 5  # three shards of SHARD_REQUESTS, and two pages of rows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_requests=SHARD_REQUESTS)


def requests(count: int = REQUESTS) -> list[dict[str, Any]]:
    return [{"custom_id": f"q-{n:03}", "messages": [{"role": "user", "content": f"q {n}"}]} for n in range(count)]


async def start(client: Client) -> dict[str, Any]:
    arguments = {"deployments": ["gpt-4o-mini"], "requests": requests(), "name": "faq"}
    return structured(await client.call_tool("start_run", arguments))


async def viewed_to_its_end(client: Client, run_id: str, clock: FakeClock) -> list[dict[str, Any]]:
    """Every view_job answer until the run is terminal (the clock moved between looks, as hours pass)."""
    views: list[dict[str, Any]] = []
    with anyio.fail_after(WAIT):
        while not views or not views[-1]["run"]["terminal"]:
            views.append(structured(await client.call_tool("view_job", {"run_id": run_id})))
            clock.advance(HOURS)
            await anyio.sleep(POLL)
    return views


async def test_view_job_refreshes_a_run_as_the_watcher_takes_it_along(
    app: MCPServer[AppState], fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        started = await start(client)
        views = await viewed_to_its_end(client, started["id"], fake_clock)
        shown = structured(await client.call_tool("get_run", {"run_id": started["id"]}))
    first, last = views[0], views[-1]
    assert first["batch"] is None
    assert first["run"]["id"] == started["id"]
    assert first["run"]["status"] == "running"
    assert sum(first["run"]["shard_counts"].values()) == 3
    assert [load["deployment"] for load in first["run"]["ledger"]] == ["gpt-4o-mini"]
    assert first["results"] is None
    assert first["rows"] is None
    assert 2 <= first["refresh_seconds"] <= 10
    done = [view["run"]["shard_counts"].get("done", 0) for view in views]
    assert done == sorted(done)  # each refresh shows the run as far as it has got
    assert last["run"]["status"] == "completed"
    assert last["run"]["shard_counts"] == {"done": 3}
    assert last["run"]["request_counts"] == {"total": REQUESTS, "completed": REQUESTS, "failed": 0}
    assert last["run"] == shown  # the registry's run, as get_run gives it


async def test_view_job_pages_through_a_runs_merged_rows_once_fetched(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        started = await start(client)
        await viewed_to_its_end(client, started["id"], fake_clock)
        before = structured(await client.call_tool("view_job", {"run_id": started["id"], "rows_offset": 0}))
        structured(await client.call_tool("fetch_run_results", {"run_id": started["id"], "preview": 2}))
        first = structured(await client.call_tool("view_job", {"run_id": started["id"], "rows_offset": 0}))
        rest = structured(await client.call_tool("view_job", {"run_id": started["id"], "rows_offset": PAGE_ROWS}))
    assert before["results"] is None
    assert before["rows"] is None  # nothing merged yet
    assert first["results"]["run_id"] == started["id"]
    assert first["results"]["counts"]["succeeded"] == REQUESTS
    assert first["results"]["shards"] == 3
    assert Path(first["results"]["results_path"]).parent == workspace
    assert [row["custom_id"] for row in first["rows"]["rows"]] == [f"q-{n:03}" for n in range(PAGE_ROWS)]
    assert first["rows"]["next_offset"] == PAGE_ROWS
    assert [row["custom_id"] for row in rest["rows"]["rows"]] == [f"q-{n:03}" for n in range(PAGE_ROWS, REQUESTS)]
    assert rest["rows"]["next_offset"] is None


@pytest.mark.parametrize("arguments", [{}, {"batch_id": "batch_1", "run_id": "run_1"}])
async def test_view_job_needs_exactly_one_of_batch_id_and_run_id(
    app: MCPServer[AppState], arguments: dict[str, Any]
) -> None:
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        result = await client.call_tool("view_job", arguments)
    assert error_kind(result) == "invalid_input"


async def test_view_job_of_an_unknown_run_is_not_found(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        result = await client.call_tool("view_job", {"run_id": "run_nope"})
    assert error_kind(result) == "not_found"
