"""Cost through a real MCP client: estimates from validate_batch_file, build_batch_file and upload_file,
max_cost on create_batch, the cost of what came back in fetch_results and its resource."""

from __future__ import annotations

import json
from pathlib import Path

from mcp import Client
from mcp.server.mcpserver import MCPServer

from aoai_batch.emulator import Emulator, FakeClock
from server.state import AppState
from tests.support.clock import HOURS
from tests.support.mcp import error_kind, start_batch, structured


async def test_validate_and_build_give_the_estimated_cost(app: MCPServer[AppState], batch_file: Path) -> None:
    async with Client(app, mode="legacy") as client:
        report = structured(await client.call_tool("validate_batch_file", {"path": batch_file.name}))
        built = structured(
            await client.call_tool(
                "build_batch_file",
                {"deployment": "gpt-4o", "prompts": ["a", "b"], "body": {"max_completion_tokens": 50}},
            )
        )

    estimate = report["estimated_cost"]
    assert report["max_output_tokens"] == 60  # three lines of max_tokens 20
    assert (estimate["model"], estimate["model_from"], estimate["currency"]) == (
        "gpt-4o-mini-2024-07-18",
        "emulator",
        "USD",
    )
    assert estimate["input"] > 0
    assert estimate["total_upper_bound"] > estimate["input"]
    assert estimate["price_date"]
    assert built["estimated_cost"]["model"] == "gpt-4o-2024-08-06"
    assert built["validation"][0]["estimated_cost"] == built["estimated_cost"]


async def test_a_build_without_output_limits_has_no_upper_bound_and_says_why(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        built = structured(await client.call_tool("build_batch_file", {"deployment": "gpt-4o", "prompts": ["a"]}))
    estimate = built["estimated_cost"]
    assert estimate["input"] > 0
    assert estimate["output_upper_bound"] is None
    assert "max_tokens" in estimate["reason"]


async def test_create_batch_above_max_cost_is_refused_and_starts_nothing(
    app: MCPServer[AppState], batch_file: Path, emulator: Emulator
) -> None:
    async with Client(app, mode="legacy") as client:
        uploaded = structured(await client.call_tool("upload_file", {"path": batch_file.name}))
        assert uploaded["estimated_cost"]["total_upper_bound"] > 0
        refused = await client.call_tool(
            "create_batch", {"input_file_id": uploaded["file"]["id"], "max_cost": 0.0000001}
        )
    assert error_kind(refused) == "over_budget"
    assert "max_cost" in refused.content[0].text  # type: ignore[union-attr]
    assert await emulator.operations.list_batches() == []


async def test_fetch_results_and_its_resource_give_the_cost(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file, max_cost=1)
        fake_clock.advance(2 * HOURS)
        fetched = structured(await client.call_tool("fetch_results", {"batch_id": created["id"]}))
        resource = await client.read_resource(f"batch://jobs/{created['id']}/results")

    cost = fetched["cost"]
    assert cost["models"] == ["gpt-4o-mini-2024-07-18"]
    assert cost["total"] > 0
    assert cost["input_tokens"] == fetched["usage"]["prompt_tokens"]
    assert json.loads(resource.contents[0].text)["cost"] == cost  # type: ignore[union-attr]
