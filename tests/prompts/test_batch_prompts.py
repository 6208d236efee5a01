from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, GetPromptResult, TextContent

from aoai_batch.emulator import FakeClock
from aoai_batch.errors import ERROR_KEY
from prompts.error_codes import AZURE_ERROR_CODES, meanings
from server.state import AppState
from tests.support.batch_files import question_line
from tests.support.clock import HOURS
from tests.support.mcp import MODES, structured


def text_of(result: GetPromptResult) -> str:
    assert len(result.messages) == 1
    message = result.messages[0]
    assert message.role == "user"
    assert isinstance(message.content, TextContent)
    return message.content.text


@pytest.mark.parametrize("mode", MODES)
async def test_plan_batch_job_carries_the_goal_and_the_data(app: MCPServer[AppState], mode: str) -> None:
    async with Client(app, mode=mode) as client:
        result = await client.get_prompt("plan_batch_job", {"goal": "classify tickets", "data": "tickets.csv"})
    text = text_of(result)
    assert "classify tickets" in text
    assert "tickets.csv" in text
    for tool in ("build_batch_file", "upload_file", "create_batch", "get_batch", "fetch_results"):
        assert tool in text


async def test_plan_batch_job_proposes_a_run_for_data_larger_than_one_file(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        result = await client.get_prompt("plan_batch_job", {"goal": "tag a million rows", "data": "rows.csv"})
    text = text_of(result)
    assert "larger than one file" in text
    for tool in ("start_run", "get_run", "fetch_run_results"):
        assert tool in text


async def test_troubleshoot_batch_explains_the_error_codes_of_a_failed_batch(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock
) -> None:
    bad = workspace / "bad.jsonl"
    bad.write_bytes(question_line(1, deployment="no-such-deployment") + b"\n")
    async with Client(app, mode="legacy") as client:
        uploaded = structured(await client.call_tool("upload_file", {"path": bad.name, "validate": False}))
        created = structured(await client.call_tool("create_batch", {"input_file_id": uploaded["file"]["id"]}))
        fake_clock.advance(2 * HOURS)
        failed = structured(await client.call_tool("get_batch", {"batch_id": created["id"]}))
        result = await client.get_prompt("troubleshoot_batch", {"batch_id": str(created["id"])})
    text = text_of(result)
    assert failed["status"] == "failed"
    codes = [error["code"] for error in failed["errors"]]
    assert "model_not_found" in codes
    assert str(created["id"]) in text
    assert AZURE_ERROR_CODES["model_not_found"] in text


async def test_summarize_results_before_fetching_asks_for_fetch_results(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock
) -> None:
    path = workspace / "in.jsonl"
    path.write_bytes(question_line(1) + b"\n")
    async with Client(app, mode="legacy") as client:
        uploaded = structured(await client.call_tool("upload_file", {"path": path.name}))
        created = structured(await client.call_tool("create_batch", {"input_file_id": uploaded["file"]["id"]}))
        running = await client.get_prompt("summarize_results", {"batch_id": str(created["id"])})
        fake_clock.advance(2 * HOURS)
        done = await client.get_prompt("summarize_results", {"batch_id": str(created["id"])})
    assert "get_batch" in text_of(running)
    assert "fetch_results" in text_of(done)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prompt", ["troubleshoot_batch", "summarize_results"])
async def test_prompts_for_an_unknown_batch_are_clear_errors_and_log_no_traceback(
    app: MCPServer[AppState], prompt: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Client(app, mode=mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.get_prompt(prompt, {"batch_id": "batch_unknown"})
    assert refused.value.code == INVALID_PARAMS
    assert refused.value.error.data == {ERROR_KEY: {"kind": "not_found"}}
    assert refused.value.message.count("list_batches") == 1
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_meanings_keep_known_codes_once_in_order() -> None:
    assert list(meanings(["url_mismatch", "no_such_code", "bom", "url_mismatch"])) == ["url_mismatch", "bom"]
