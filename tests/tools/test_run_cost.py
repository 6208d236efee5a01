"""A run's cost through a real MCP client: start_run's estimate and max_cost, fetch_run_results' cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import Settings
from server.state import AppState
from tests.support.clock import HOURS
from tests.support.mcp import POLL, WAIT, error_details, make_settings, structured
from tests.support.runs import SHARD_REQUESTS, emulator_batches


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_requests=SHARD_REQUESTS)


def requests(count: int, max_tokens: int) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"q-{n:03}", "messages": [{"role": "user", "content": f"q {n}"}], "max_tokens": max_tokens}
        for n in range(count)
    ]


async def test_start_run_gives_the_estimate_and_fetch_run_results_the_cost(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        started = structured(
            await client.call_tool(
                "start_run", {"deployments": ["gpt-4o-mini"], "requests": requests(12, 20), "max_cost": 1.0}
            )
        )
        with anyio.fail_after(WAIT):
            while not structured(await client.call_tool("get_run", {"run_id": started["id"]}))["terminal"]:
                fake_clock.advance(HOURS)
                await anyio.sleep(POLL)
        summary = structured(await client.call_tool("fetch_run_results", {"run_id": started["id"]}))

    estimate = started["estimated_cost"]
    assert (estimate["model"], estimate["currency"]) == ("gpt-4o-mini-2024-07-18", "USD")
    assert estimate["total_upper_bound"] > estimate["input"] > 0
    cost = summary["cost"]
    assert cost["total"] > 0
    assert cost["input_tokens"] == summary["usage"]["prompt_tokens"]


async def test_start_run_above_max_cost_is_refused_over_budget_and_nothing_is_started(
    app: MCPServer[AppState], emulator: Emulator
) -> None:
    arguments = {"deployments": ["gpt-4o-mini"], "requests": requests(25, 100_000), "max_cost": 0.01}
    async with Client(app, mode="legacy") as client:
        refused = await client.call_tool("start_run", arguments)
        listed = structured(await client.call_tool("list_runs", {}))

    assert error_details(refused)["kind"] == "over_budget"
    assert listed["runs"] == []
    assert await emulator_batches(emulator) == []
