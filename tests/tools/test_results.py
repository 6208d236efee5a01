from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import TextContent

from aoai_batch.emulator import FakeClock
from server.state import AppState
from tests.support.clock import HOURS
from tests.support.mcp import MODES, error_details, error_kind, start_batch, structured


def read(path: object) -> bytes:
    return Path(str(path)).read_bytes()


def jsonl_files(folder: Path) -> list[Path]:
    return list(folder.glob("*.jsonl"))


@pytest.mark.parametrize("mode", MODES)
async def test_fetch_results_writes_one_row_per_request_in_the_workspace(
    app: MCPServer[AppState], batch_file: Path, workspace: Path, fake_clock: FakeClock, mode: str
) -> None:
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async with Client(app, mode=mode) as client:
        created = await start_batch(client, batch_file)
        fake_clock.advance(2 * HOURS)
        fetched = structured(
            await client.call_tool(
                "fetch_results", {"batch_id": created["id"], "output_dir": "results", "preview": 2},
                progress_callback=on_progress,
            )
        )  # fmt: skip
        resource = await client.read_resource(f"batch://jobs/{created['id']}/results")
        job = structured(await client.call_tool("get_batch", {"batch_id": created["id"]}))
    results = Path(str(fetched["results_path"]))
    assert results.parent == workspace / "results"
    assert len(read(results).splitlines()) == 3
    assert fetched["counts"] == {"succeeded": 3, "failed": 0, "missing": 0}
    assert len(fetched["preview"]) == 2
    assert json.loads(resource.contents[0].text)["results_path"] == str(results)  # type: ignore[union-attr]
    assert job["results_path"] == str(results)
    assert reported


async def test_fetching_a_running_batch_is_a_tool_error(app: MCPServer[AppState], batch_file: Path) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        result = await client.call_tool("fetch_results", {"batch_id": created["id"]})
    assert error_details(result) == {"kind": "not_ready"}


async def test_fetching_again_keeps_the_earlier_files(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        fake_clock.advance(2 * HOURS)
        first = structured(await client.call_tool("fetch_results", {"batch_id": created["id"]}))
        again = structured(await client.call_tool("fetch_results", {"batch_id": created["id"]}))
    assert first["results_path"] != again["results_path"]
    assert read(first["results_path"]) == read(again["results_path"])


async def test_fetch_results_outside_the_workspace_is_refused(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock, tmp_path: Path
) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        fake_clock.advance(2 * HOURS)
        result = await client.call_tool("fetch_results", {"batch_id": created["id"], "output_dir": str(tmp_path)})
    assert error_kind(result) == "invalid_input"
    assert not jsonl_files(tmp_path)


async def test_summarize_results_after_fetching_carries_the_summary(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        fake_clock.advance(2 * HOURS)
        fetched = structured(await client.call_tool("fetch_results", {"batch_id": created["id"]}))
        prompt = await client.get_prompt("summarize_results", {"batch_id": str(created["id"])})
    content = prompt.messages[0].content
    assert isinstance(content, TextContent)
    assert str(fetched["results_path"]) in content.text
