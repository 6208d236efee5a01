"""The whole flow through `aoai-batch-mcp serve` in a subprocess over real stdio, on the embedded emulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ResourceUpdatedNotification

from tests.support.inbox import Inbox
from tests.support.mcp import error_details, structured
from tests.support.paths import REPO_ROOT

FLOW_SECONDS = 120.0  # generous: the emulator runs at 600x, the whole flow takes seconds


def server_parameters(tmp_path: Path) -> StdioServerParameters:
    env = get_default_environment()
    env.update(
        {
            "AOAI_BATCH_HOME": str(tmp_path / "home"),
            "AOAI_BATCH_WORKSPACE": str(tmp_path / "ws"),
            "AOAI_EMULATOR_TIME_SCALE": "600",
            "AOAI_BATCH_POLL_SECONDS": "0.2",
        }
    )
    return StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env, cwd=str(REPO_ROOT))


def line_count(path: Path) -> int:
    return len(path.read_bytes().splitlines())


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


async def wait_until_terminal(client: Client, batch_id: str) -> dict[str, Any]:
    while True:
        batch = await call(client, "get_batch", batch_id=batch_id, wait_seconds=5)
        if batch["terminal"]:
            return batch


@pytest.mark.slow
async def test_the_whole_flow_over_stdio_on_the_embedded_emulator(tmp_path: Path) -> None:
    inbox = Inbox()
    prompts = [f"Question {n}?" for n in range(5)]
    async with Client(server_parameters(tmp_path), mode="legacy", message_handler=inbox) as client:
        assert client.instructions is not None
        assert "emulator" in client.instructions
        with anyio.fail_after(FLOW_SECONDS):
            built = await call(client, "build_batch_file", deployment="gpt-4o-mini", prompts=prompts)
            path = built["files"][0]["path"]
            report = await call(client, "validate_batch_file", path=path)
            uploaded = await call(client, "upload_file", path=path)
            batch = await call(client, "create_batch", input_file_id=uploaded["file"]["id"], idempotency_key="e2e")
            uri = f"batch://jobs/{batch['id']}"
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(uri)
            done = await wait_until_terminal(client, batch["id"])
            await inbox.wait_for(ResourceUpdatedNotification, uri=uri)
            fetched = await call(client, "fetch_results", batch_id=batch["id"], preview=2)
    assert report["ok"] is True
    assert report["requests"] == 5
    assert batch["backend"] == "emulator"
    assert done["status"] == "completed"
    assert fetched["counts"] == {"succeeded": 5, "failed": 0, "missing": 0}
    assert len(fetched["preview"]) == 2
    results = Path(fetched["results_path"])
    assert results.parent == tmp_path / "ws"
    assert line_count(results) == 5


@pytest.mark.slow
async def test_cancel_and_paging_over_stdio(tmp_path: Path) -> None:
    async with Client(server_parameters(tmp_path), mode="auto") as client:
        with anyio.fail_after(FLOW_SECONDS):
            built = await call(
                client, "build_batch_file", deployment="gpt-4o-mini", prompts=[f"Q{n}" for n in range(200)]
            )
            uploaded = await call(client, "upload_file", path=built["files"][0]["path"])
            first = await call(client, "create_batch", input_file_id=uploaded["file"]["id"])
            second = await call(client, "create_batch", input_file_id=uploaded["file"]["id"])
            cancelling = await call(client, "cancel_batch", batch_id=second["id"])
            cancelled = await wait_until_terminal(client, second["id"])
            page = await call(client, "list_batches", limit=1)
            rest = await call(client, "list_batches", limit=1, after=page["last_id"])
            again = await client.call_tool("cancel_batch", {"batch_id": second["id"]})
    assert cancelling["status"] in {"cancelling", "cancelled"}
    assert cancelled["status"] == "cancelled"
    assert page["has_more"] is True
    assert [b["id"] for b in page["batches"] + rest["batches"]] == [second["id"], first["id"]]
    assert error_details(again) == {"kind": "rejected", "code": "batch_not_cancellable"}  # _meta crosses stdio


@pytest.mark.slow
async def test_a_run_over_stdio_is_advanced_by_the_server_and_merged(tmp_path: Path) -> None:
    inbox = Inbox()
    parameters = server_parameters(tmp_path)
    parameters.env = {**(parameters.env or {}), "AOAI_BATCH_MAX_REQUESTS": "4"}
    prompts = [f"Question {n}?" for n in range(10)]
    async with Client(parameters, mode="legacy", message_handler=inbox) as client:
        with anyio.fail_after(FLOW_SECONDS):
            run = await call(client, "start_run", deployments=["gpt-4o-mini", "gpt-4o"], prompts=prompts)
            uri = f"batch://runs/{run['id']}"
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(uri)
            await inbox.wait_for(ResourceUpdatedNotification, uri=uri)
            while not (done := await call(client, "get_run", run_id=run["id"], wait_seconds=5))["terminal"]:
                pass
            fetched = await call(client, "fetch_run_results", run_id=run["id"], preview=1)
    assert sum(run["shard_counts"].values()) == 3
    assert done["status"] == "completed"
    assert fetched["counts"] == {"succeeded": 10, "failed": 0, "missing": 0}
    assert line_count(Path(fetched["results_path"])) == 10
