from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from aoai_batch.emulator import FakeClock
from server.state import AppState
from tests.support.batch_files import write_workspace_batch
from tests.support.clock import HOURS
from tests.support.mcp import MODES, WAIT, error_details, error_kind, start_batch, structured


@pytest.mark.parametrize("mode", MODES)
async def test_a_batch_runs_from_upload_to_completed(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock, mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        created = await start_batch(client, batch_file)
        fake_clock.advance(2 * HOURS)
        done = structured(await client.call_tool("get_batch", {"batch_id": created["id"]}))
    assert created["status"] == "validating"
    assert created["terminal"] is False
    assert created["backend"] == "emulator"
    assert done["status"] == "completed"
    assert done["terminal"] is True
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert done["input_path"] == str(batch_file)


async def test_get_batch_waits_for_a_change_and_reports_progress(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))
        fake_clock.advance(HOURS)  # the batch moves on while the tool waits

    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        with anyio.fail_after(WAIT):
            waited = await client.call_tool(
                "get_batch", {"batch_id": created["id"], "wait_seconds": 50}, progress_callback=on_progress
            )
    assert structured(waited)["status"] != "validating"
    assert updates
    assert all(total == 50 for _, total, _ in updates)


async def test_the_same_idempotency_key_never_creates_a_second_batch(
    app: MCPServer[AppState], batch_file: Path
) -> None:
    async with Client(app, mode="legacy") as client:
        first = await start_batch(client, batch_file, idempotency_key="run-1")
        again = await start_batch(client, batch_file, idempotency_key="run-1")
        listed = structured(await client.call_tool("list_batches", {}))
    assert again["id"] == first["id"]
    assert [b["id"] for b in listed["batches"]] == [first["id"]]


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_of_a_running_batch_ends_cancelled(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock, mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        created = await start_batch(client, batch_file)
        cancelling = structured(await client.call_tool("cancel_batch", {"batch_id": created["id"]}))
        fake_clock.advance(HOURS)
        cancelled = structured(await client.call_tool("get_batch", {"batch_id": created["id"]}))
    assert cancelling["status"] in {"cancelling", "cancelled"}
    assert cancelled["status"] == "cancelled"


async def test_cancel_of_a_completed_batch_is_a_tool_error(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        fake_clock.advance(2 * HOURS)
        result = await client.call_tool("cancel_batch", {"batch_id": created["id"]})
        after = structured(await client.call_tool("get_batch", {"batch_id": created["id"]}))
    assert error_details(result) == {"kind": "rejected", "code": "batch_not_cancellable"}
    assert after["status"] == "completed"


async def test_list_batches_pages_with_after_and_last_id(app: MCPServer[AppState], workspace: Path) -> None:
    async with Client(app, mode="legacy") as client:
        ids = []
        for n in range(5):
            ids.append((await start_batch(client, write_workspace_batch(workspace, f"in-{n}.jsonl")))["id"])
        first = structured(await client.call_tool("list_batches", {"limit": 2}))
        second = structured(await client.call_tool("list_batches", {"limit": 2, "after": first["last_id"]}))
        rest = structured(await client.call_tool("list_batches", {"limit": 2, "after": second["last_id"]}))
    pages = [first, second, rest]
    seen = [batch["id"] for page in pages for batch in page["batches"]]
    assert sorted(seen) == sorted(ids)
    assert len(set(seen)) == 5
    assert [page["has_more"] for page in pages] == [True, True, False]


async def test_list_batches_filters_by_status(
    app: MCPServer[AppState], batch_file: Path, workspace: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        done = await start_batch(client, batch_file)
        fake_clock.advance(2 * HOURS)
        running = await start_batch(client, write_workspace_batch(workspace, "second.jsonl"))
        completed = structured(await client.call_tool("list_batches", {"status": "completed"}))
    assert [b["id"] for b in completed["batches"]] == [done["id"]]
    assert running["id"] != done["id"]


@pytest.mark.parametrize(
    ("tool", "arguments", "kind"),
    [
        ("get_batch", {"batch_id": "batch_does_not_exist"}, "not_found"),
        ("cancel_batch", {"batch_id": "batch_does_not_exist"}, "not_found"),
        ("create_batch", {"input_file_id": "file-does-not-exist"}, "not_found"),
        ("get_batch", {"batch_id": "batch_x", "wait_seconds": 51}, "invalid_input"),
        ("list_batches", {"limit": 0}, "invalid_input"),
        ("create_batch", {"input_file_id": "file-1", "endpoint": "/v1/images"}, "invalid_input"),
    ],
)
async def test_bad_requests_are_tool_errors(
    app: MCPServer[AppState], tool: str, arguments: dict[str, object], kind: str
) -> None:
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool(tool, arguments)
    assert error_kind(result) == kind
    assert result.content
    assert result.content[0].type == "text"


@pytest.mark.parametrize("mode", MODES)
async def test_a_cancelled_wait_ends_and_the_server_keeps_serving(
    app: MCPServer[AppState], batch_file: Path, mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        created = await start_batch(client, batch_file)
        waiting = anyio.CancelScope()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            waiting.cancel()  # the user gives up as soon as the wait has started

        with anyio.fail_after(WAIT):
            with waiting:
                await client.call_tool(
                    "get_batch", {"batch_id": created["id"], "wait_seconds": 50}, progress_callback=on_progress
                )
            listed = structured(await client.call_tool("list_batches", {}))
    assert waiting.cancelled_caught
    assert [batch["id"] for batch in listed["batches"]] == [created["id"]]


@pytest.mark.parametrize(
    ("input_file_id", "next_tool"),
    [("questions.jsonl", "upload_file"), ("input.jsonl", "upload_file"), ("batch_abc123", "get_batch")],
)
async def test_create_batch_from_a_path_or_a_batch_id_says_what_it_is_and_what_to_call(
    app: MCPServer[AppState], batch_file: Path, input_file_id: str, next_tool: str
) -> None:
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool("create_batch", {"input_file_id": input_file_id})
        batches = structured(await client.call_tool("list_batches", {}))
    assert error_kind(result) == "invalid_input"
    assert result.content[0].type == "text"
    assert next_tool in result.content[0].text
    assert batches["batches"] == []


async def test_create_batch_from_an_unknown_file_id_points_to_list_files(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool("create_batch", {"input_file_id": "file-does-not-exist"})
    assert error_kind(result) == "not_found"
    assert result.content[0].type == "text"
    assert "list_files" in result.content[0].text
