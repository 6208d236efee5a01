"""The runs' resources, their notifications in both protocol eras, run id completion, and the server advancing
runs in the background (and resuming them when it starts again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.subscriptions import Subscription
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import (
    INVALID_PARAMS,
    ResourceListChangedNotification,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
)

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import Settings
from server.app import build_server
from server.state import AppState
from tests.support.clock import HOURS
from tests.support.inbox import Inbox
from tests.support.mcp import MODES, POLL, WAIT, error_kind, make_settings, structured
from tests.support.runs import SHARD_REQUESTS

RUN = {"deployments": ["gpt-4o-mini"], "prompts": [f"question {n}" for n in range(2 * SHARD_REQUESTS)]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_requests=SHARD_REQUESTS)


async def read_json(client: Client, uri: str) -> Any:
    contents = (await client.read_resource(uri)).contents[0]
    return json.loads(contents.text)  # type: ignore[union-attr]


async def read_until_terminal(client: Client, uri: str, clock: FakeClock) -> dict[str, Any]:
    """The run resource once it has ended: reading it does not advance a run, so the server's task did."""
    with anyio.fail_after(WAIT):
        while not (run := await read_json(client, uri))["terminal"]:
            clock.advance(HOURS)
            await anyio.sleep(POLL)
    assert isinstance(run, dict)
    return run


async def test_the_run_resources_list_read_and_summarise_runs(app: MCPServer[AppState], fake_clock: FakeClock) -> None:
    async with Client(app, mode="legacy") as client:
        started = structured(await client.call_tool("start_run", {**RUN, "name": "quiz"}))
        uri = f"batch://runs/{started['id']}"
        listing = await read_json(client, "batch://runs")
        with pytest.raises(MCPError) as early:
            await client.read_resource(f"{uri}/results")
        done = await read_until_terminal(client, uri, fake_clock)
        await client.call_tool("fetch_run_results", {"run_id": started["id"]})
        summary = await read_json(client, f"{uri}/results")
        templates = {template.uri_template for template in (await client.list_resource_templates()).resource_templates}
    assert listing["shown"] == 1
    assert listing["runs"][0]["id"] == started["id"]
    assert listing["runs"][0]["name"] == "quiz"
    assert early.value.error.code == INVALID_PARAMS
    assert done["status"] == "completed"
    assert summary["run_id"] == started["id"]
    assert summary["counts"]["succeeded"] == 2 * SHARD_REQUESTS
    assert {"batch://runs/{run_id}", "batch://runs/{run_id}/results"} <= templates


async def test_an_unknown_run_resource_is_invalid_params(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        with pytest.raises(MCPError) as missing:
            await client.read_resource("batch://runs/run_000000000000000000000000")
    assert missing.value.error.code == INVALID_PARAMS


async def test_a_handshake_era_subscriber_hears_as_the_shards_move(
    app: MCPServer[AppState], fake_clock: FakeClock
) -> None:
    inbox = Inbox()
    async with Client(app, mode="legacy", message_handler=inbox) as client:
        started = structured(await client.call_tool("start_run", RUN))
        await inbox.wait_for(ResourceListChangedNotification)
        uri = f"batch://runs/{started['id']}"
        with pytest.warns(MCPDeprecationWarning):  # resources/subscribe is the 2025-11-25 way
            await client.subscribe_resource(uri)
        await inbox.wait_for(ResourceUpdatedNotification, uri=uri)  # the server's task submitted a shard
        await read_until_terminal(client, uri, fake_clock)


async def next_updated(subscription: Subscription, uri: str) -> ResourceUpdated:
    with anyio.fail_after(WAIT):
        async for event in subscription:
            if isinstance(event, ResourceUpdated) and event.uri == uri:
                return event
    raise AssertionError("the listen stream ended without the event")


async def test_a_listen_era_subscriber_hears_as_the_shards_move(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="auto") as client:
        async with client.listen(resources_list_changed=True) as listening:
            started = structured(await client.call_tool("start_run", RUN))
            with anyio.fail_after(WAIT):
                async for event in listening:
                    if isinstance(event, ResourcesListChanged):
                        break
        uri = f"batch://runs/{started['id']}"
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            event = await next_updated(subscription, uri)
    assert event == ResourceUpdated(uri=uri)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("template", ["batch://runs/{run_id}", "batch://runs/{run_id}/results"])
async def test_run_ids_complete_by_prefix(app: MCPServer[AppState], mode: str, template: str) -> None:
    ref = ResourceTemplateReference(type="ref/resource", uri=template)
    async with Client(app, mode=mode) as client:
        started = structured(await client.call_tool("start_run", RUN))
        matching = await client.complete(ref, {"name": "run_id", "value": started["id"][:8]})
        nothing = await client.complete(ref, {"name": "run_id", "value": "zzz"})
        batch_ids = await client.complete(ref, {"name": "batch_id", "value": ""})
    assert matching.completion.values == [started["id"]]
    assert nothing.completion.values == []
    assert batch_ids.completion.values == []


async def test_a_restarted_server_resumes_the_runs_it_left(
    settings: Settings, emulator: Emulator, fake_clock: FakeClock
) -> None:
    first = build_server(settings, transport=emulator.transport(), first_poll_delay=3600)  # never steps the run
    async with Client(first, mode="legacy") as client:
        started = structured(await client.call_tool("start_run", RUN))
    again = build_server(settings, transport=emulator.transport(), first_poll_delay=0)
    async with Client(again, mode="legacy") as client:
        done = await read_until_terminal(client, f"batch://runs/{started['id']}", fake_clock)
    assert started["shard_counts"] == {"queued": 2}
    assert done["status"] == "completed"
    assert done["request_counts"]["completed"] == 2 * SHARD_REQUESTS


async def test_a_service_that_cannot_start_leaves_the_runs_task_retrying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # key auth without a key: the service refuses to open, and the runs' task says so rather than dying
    settings = make_settings(
        tmp_path, provider="azure", endpoint="https://x.openai.azure.com", api_key=None, auth="key"
    )
    async with Client(build_server(settings, first_poll_delay=0), mode="legacy") as client:
        with anyio.fail_after(WAIT):
            while True:  # the log is the only sign of it
                if "advancing runs failed" in caplog.text:
                    break
                await anyio.sleep(POLL)
        listed = await client.call_tool("list_runs", {})
    assert error_kind(listed) == "not_configured"
