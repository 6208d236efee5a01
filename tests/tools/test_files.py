from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import ListRootsResult, Root, TextResourceContents

from server.state import AppState
from tests.support.batch_files import question_line, write_workspace_batch
from tests.support.mcp import MODES, error_kind, structured


def write_broken_file(folder: Path) -> Path:
    path = folder / "broken.jsonl"
    good = write_workspace_batch(folder, "good.jsonl", requests=2).read_bytes()
    path.write_bytes(good + b"{not json\n" + good.splitlines()[0] + b"\n")
    return path


@pytest.mark.parametrize("mode", MODES)
async def test_validate_reports_a_good_file_as_ok(app: MCPServer[AppState], batch_file: Path, mode: str) -> None:
    async with Client(app, mode=mode) as client:
        report = structured(await client.call_tool("validate_batch_file", {"path": batch_file.name}))
    assert report["ok"] is True
    assert report["requests"] == 3
    assert report["deployment"] == "gpt-4o-mini"
    assert report["path"] == str(batch_file)


async def test_validate_lists_issues_with_codes_and_lines(app: MCPServer[AppState], workspace: Path) -> None:
    broken = write_broken_file(workspace)
    async with Client(app, mode="legacy") as client:
        report = structured(await client.call_tool("validate_batch_file", {"path": str(broken)}))
    assert report["ok"] is False
    assert {(issue["code"], issue["line"]) for issue in report["issues"]} >= {
        ("invalid_json_line", 3),
        ("duplicate_custom_id", 4),
    }


async def test_upload_of_an_invalid_file_is_refused_and_uploads_nothing(
    app: MCPServer[AppState], workspace: Path
) -> None:
    broken = write_broken_file(workspace)
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool("upload_file", {"path": broken.name})
        batches = structured(await client.call_tool("list_batches", {}))
    assert error_kind(result) == "invalid_input"
    assert batches["batches"] == []


async def test_upload_returns_the_file_and_reports_progress(app: MCPServer[AppState], batch_file: Path) -> None:
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async with Client(app, mode="legacy") as client:
        uploaded = structured(
            await client.call_tool("upload_file", {"path": batch_file.name}, progress_callback=on_progress)
        )
        described = await client.read_resource(f"batch://files/{uploaded['file']['id']}")
    assert uploaded["file"]["status"] == "processed"
    assert uploaded["validation"]["ok"] is True
    assert updates
    assert isinstance(described.contents[0], TextResourceContents)
    assert uploaded["file"]["id"] in described.contents[0].text


@pytest.mark.parametrize("tool", ["validate_batch_file", "upload_file"])
@pytest.mark.parametrize("path", ["../outside.jsonl", "/etc/passwd", "escape/outside.jsonl", "missing.jsonl", ""])
async def test_paths_outside_the_workspace_or_missing_are_tool_errors(
    app: MCPServer[AppState], workspace: Path, tmp_path: Path, tool: str, path: str
) -> None:
    outside = write_workspace_batch(tmp_path, "outside.jsonl")
    os.symlink(outside.parent, workspace / "escape")
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool(tool, {"path": path})
    assert error_kind(result) == "invalid_input"
    assert result.content
    assert result.content[0].type == "text"


async def test_client_roots_widen_the_workspace_in_the_handshake_era(
    app: MCPServer[AppState], workspace: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    outside = write_workspace_batch(project, "data.jsonl")

    async def list_roots(context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=project.as_uri(), name="project")])

    async with Client(app, mode="legacy", list_roots_callback=list_roots) as client:
        report = structured(await client.call_tool("validate_batch_file", {"path": str(outside)}))
    async with Client(app, mode="legacy") as client:
        refused = await client.call_tool("validate_batch_file", {"path": str(outside)})
    assert report["ok"] is True
    assert error_kind(refused) == "invalid_input"


async def test_validate_knows_the_emulator_deployments(app: MCPServer[AppState], workspace: Path) -> None:
    path = workspace / "unknown-model.jsonl"
    path.write_bytes(question_line(1, deployment="no-such-deployment") + b"\n")
    async with Client(app, mode="legacy") as client:
        report = structured(await client.call_tool("validate_batch_file", {"path": path.name}))
    assert report["issue_counts"] == {"model_not_found": 1}


async def test_validate_says_the_emulator_deployment_was_checked(app: MCPServer[AppState], batch_file: Path) -> None:
    async with Client(app, mode="legacy") as client:
        report = structured(await client.call_tool("validate_batch_file", {"path": batch_file.name}))
    assert report["deployment_checked"] is True


async def test_upload_for_a_deployment_that_does_not_exist_names_the_ones_that_do(
    app: MCPServer[AppState], workspace: Path
) -> None:
    path = workspace / "gpt5.jsonl"
    path.write_bytes(question_line(1, deployment="gpt-5") + b"\n")
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool("upload_file", {"path": path.name})
        files = structured(await client.call_tool("list_files", {}))
    assert error_kind(result) == "invalid_input"
    assert result.content[0].type == "text"
    assert "gpt-4o-mini" in result.content[0].text
    assert files["files"] == []


@pytest.mark.parametrize("mode", MODES)
async def test_list_files_pages_the_uploaded_files_newest_first(
    app: MCPServer[AppState], workspace: Path, mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        ids = []
        for n in range(3):
            path = write_workspace_batch(workspace, f"in{n}.jsonl", requests=1)
            ids.append(structured(await client.call_tool("upload_file", {"path": path.name}))["file"]["id"])
        first = structured(await client.call_tool("list_files", {"limit": 2}))
        rest = structured(await client.call_tool("list_files", {"limit": 2, "after": first["last_id"]}))
        refused = await client.call_tool("list_files", {"limit": 0})
    listed = first["files"] + rest["files"]
    assert [info["id"] for info in listed] == ids[::-1]
    assert (first["has_more"], rest["has_more"]) == (True, False)
    assert {"id", "filename", "bytes", "status", "purpose", "created_at", "expires_at"} <= set(listed[0])
    assert error_kind(refused) == "invalid_input"  # limit 0: the input schema's minimum


async def test_list_files_is_read_only_idempotent_and_open_world(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    notes = tools["list_files"].annotations
    assert notes is not None
    assert (notes.read_only_hint, notes.idempotent_hint, notes.open_world_hint) == (True, True, True)
