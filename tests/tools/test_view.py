"""The job view's tools (tools/view.py): the links to the view, and the app-only tool view_job."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import TextContent

from aoai_batch.emulator import FakeClock
from server.state import AppState
from tests.support.apps import APPS_HOST
from tests.support.batch_files import write_workspace_batch
from tests.support.clock import HOURS
from tests.support.mcp import MODES, POLL, WAIT, error_kind, start_batch, structured
from tools import all_tools
from tools.view import PAGE_ROWS, VIEW_URI, VIEWED_TOOLS, app_tools, is_app_only, link_view, view_meta


@pytest.mark.parametrize("mode", MODES)
async def test_the_viewed_tools_link_to_the_view_in_both_forms(app: MCPServer[AppState], mode: str) -> None:
    async with Client(app, mode=mode) as client:
        listed = {tool.name: tool.meta for tool in (await client.list_tools()).tools}
    linked = {name for name, meta in listed.items() if meta}
    assert linked == {"get_batch", "fetch_results", "get_run", "fetch_run_results"} == set(VIEWED_TOOLS)
    for name in VIEWED_TOOLS:
        assert listed[name] == {"ui": {"resourceUri": VIEW_URI}, "ui/resourceUri": VIEW_URI}


@pytest.mark.parametrize("mode", MODES)
async def test_view_job_is_listed_as_app_only_to_a_host_that_shows_views(app: MCPServer[AppState], mode: str) -> None:
    async with Client(app, mode=mode, extensions=[APPS_HOST]) as client:
        listed = {tool.name: tool.meta for tool in (await client.list_tools()).tools}
    assert listed["view_job"] == view_meta(app_only=True)
    assert listed["view_job"]["ui"]["visibility"] == ["app"]


@pytest.mark.parametrize("mode", MODES)
async def test_view_job_is_not_listed_to_a_client_without_views(app: MCPServer[AppState], mode: str) -> None:
    async with Client(app, mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert names == {tool.name for tool in all_tools()}
    assert "view_job" not in names


def test_link_view_keeps_the_other_meta_keys() -> None:
    tools = app_tools()
    tools[0].meta = {"other": 1}
    link_view(tools, ["view_job"], "ui://x/y.html")
    assert tools[0].meta == {"other": 1, "ui": {"resourceUri": "ui://x/y.html"}, "ui/resourceUri": "ui://x/y.html"}


@pytest.mark.parametrize(
    ("meta", "app_only"),
    [
        (None, False),
        ({}, False),
        ({"ui": "odd"}, False),
        ({"ui": {"resourceUri": VIEW_URI}}, False),
        ({"ui": {"visibility": ["model", "app"]}}, False),
        ({"ui": {"visibility": ["app"]}}, True),
    ],
)
def test_only_a_visibility_without_model_is_app_only(meta: dict[str, object] | None, app_only: bool) -> None:
    assert is_app_only(meta) is app_only


async def test_text_stays_first_get_batch_still_returns_the_whole_batch_as_text(
    app: MCPServer[AppState], batch_file: Path
) -> None:
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        created = await start_batch(client, batch_file)
        result = await client.call_tool("get_batch", {"batch_id": created["id"]})
    text = result.content[0]
    assert isinstance(text, TextContent)
    assert json.loads(text.text) == structured(result)


async def test_view_job_refreshes_the_batch_and_says_how_often(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        created = await start_batch(client, batch_file)
        first = structured(await client.call_tool("view_job", {"batch_id": created["id"]}))
        later = first
        with anyio.fail_after(WAIT):  # the watcher may write a look it took just before the clock moved: ask again
            while later["batch"]["status"] != "completed":
                fake_clock.advance(2 * HOURS)
                await anyio.sleep(POLL)
                later = structured(await client.call_tool("view_job", {"batch_id": created["id"]}))
    assert first["batch"]["status"] == "validating"
    assert first["results"] is None
    assert first["rows"] is None
    assert 2 <= first["refresh_seconds"] <= 10
    assert later["batch"]["status"] == "completed"
    assert later["batch"]["request_counts"]["completed"] == 3


async def test_view_job_pages_through_the_rows_once_fetched(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock
) -> None:
    path = write_workspace_batch(workspace, "many.jsonl", requests=PAGE_ROWS + 5)
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        created = await start_batch(client, path)
        fake_clock.advance(10 * HOURS)
        before = structured(await client.call_tool("view_job", {"batch_id": created["id"], "rows_offset": 0}))
        structured(await client.call_tool("fetch_results", {"batch_id": created["id"]}))
        first = structured(await client.call_tool("view_job", {"batch_id": created["id"], "rows_offset": 0}))
        rest = structured(await client.call_tool("view_job", {"batch_id": created["id"], "rows_offset": PAGE_ROWS}))
    assert before["rows"] is None  # nothing fetched yet
    assert first["results"]["counts"]["succeeded"] == PAGE_ROWS + 5
    assert len(first["rows"]["rows"]) == PAGE_ROWS
    assert first["rows"]["next_offset"] == PAGE_ROWS
    assert [row["custom_id"] for row in rest["rows"]["rows"]] == [f"task-{n}" for n in range(PAGE_ROWS, PAGE_ROWS + 5)]
    assert rest["rows"]["next_offset"] is None


async def test_view_job_of_an_unknown_batch_is_not_found(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        result = await client.call_tool("view_job", {"batch_id": "batch_nope"})
    assert error_kind(result) == "not_found"
