from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning

from server.app import build_server
from server.state import AppState
from tests.support.mcp import MODES, error_kind, make_settings
from tools.view import VIEW_URI

TOOLS = {
    "build_batch_file": {"deployment", "prompts", "requests", "source_path", "template", "system_prompt", "id_field",
                         "image_field", "endpoint", "body", "output_path", "overwrite"},
    "validate_batch_file": {"path"},
    "upload_file": {"path", "validate", "expires_after_days", "wait"},
    "list_files": {"limit", "after", "purpose"},
    "create_batch": {"input_file_id", "endpoint", "completion_window", "metadata", "idempotency_key",
                     "max_cost"},
    "get_batch": {"batch_id", "wait_seconds"},
    "list_batches": {"limit", "after", "status"},
    "cancel_batch": {"batch_id"},
    "fetch_results": {"batch_id", "output_dir", "format", "preview"},
    "start_run": {"deployments", "prompts", "requests", "source_path", "template", "system_prompt", "id_field",
                  "image_field", "endpoint", "body", "name", "retries", "idempotency_key", "max_cost"},
    "get_run": {"run_id", "wait_seconds"},
    "list_runs": {"limit", "after"},
    "cancel_run": {"run_id"},
    "fetch_run_results": {"run_id", "output_dir", "format", "preview", "overwrite"},
}  # fmt: skip
READ_ONLY = {"get_batch", "list_batches", "list_files", "validate_batch_file", "get_run", "list_runs"}


@pytest.mark.parametrize("mode", MODES)
async def test_the_tools_have_the_spec_names_and_parameters(app: MCPServer[AppState], mode: str) -> None:
    async with Client(app, mode=mode) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name: set(tool.input_schema["properties"]) for tool in tools} == TOOLS


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_has_a_title_description_output_schema_and_described_parameters(
    app: MCPServer[AppState], mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        tools = (await client.list_tools()).tools
    for tool in tools:
        assert tool.title, tool.name
        assert tool.description, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.output_schema["type"] == "object", tool.name
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}.{name}"


async def test_annotations_tell_the_truth(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        tools = {tool.name: tool.annotations for tool in (await client.list_tools()).tools}
    assert all(tools[name] is not None for name in TOOLS)
    assert {name for name, notes in tools.items() if notes and notes.read_only_hint} == READ_ONLY
    assert tools["cancel_batch"] is not None
    assert tools["cancel_batch"].destructive_hint is True
    assert tools["create_batch"] is not None
    assert tools["create_batch"].idempotent_hint is False
    assert tools["validate_batch_file"] is not None
    assert tools["validate_batch_file"].open_world_hint is False
    assert tools["cancel_run"] is not None
    assert tools["cancel_run"].destructive_hint is True
    assert tools["start_run"] is not None
    assert (tools["start_run"].idempotent_hint, tools["start_run"].destructive_hint) == (False, False)


@pytest.mark.parametrize("mode", MODES)
async def test_instructions_say_when_the_embedded_emulator_is_in_use(tmp_path: Path, mode: str) -> None:
    emulated = build_server(make_settings(tmp_path))
    on_azure = build_server(
        make_settings(tmp_path, provider="azure", endpoint="https://example.openai.azure.com", api_key="k")
    )
    async with Client(emulated, mode=mode) as client:
        assert client.instructions is not None
        assert "emulator" in client.instructions
    async with Client(on_azure, mode=mode) as client:
        assert client.instructions is not None
        assert "emulator" not in client.instructions


@pytest.mark.parametrize("mode", MODES)
async def test_resources_templates_and_prompts_are_listed(app: MCPServer[AppState], mode: str) -> None:
    async with Client(app, mode=mode) as client:
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert resources == {
        "batch://jobs",
        "batch://runs",
        "batch://config",
        VIEW_URI,
    }  # the view's page: hosts preload it
    assert templates == {
        "batch://jobs/{batch_id}",
        "batch://jobs/{batch_id}/results",
        "batch://files/{file_id}",
        "batch://runs/{run_id}",
        "batch://runs/{run_id}/results",
    }
    assert prompts == {"plan_batch_job", "troubleshoot_batch", "summarize_results"}


async def test_handshake_capabilities_offer_subscribe_list_changed_logging_and_completion(
    app: MCPServer[AppState],
) -> None:
    async with Client(app, mode="legacy") as client:
        capabilities = client.server_capabilities
        with pytest.warns(MCPDeprecationWarning):  # logging leaves the 2026 spec; the handshake era keeps it
            result = await client.set_logging_level("warning")
    assert result is not None
    assert capabilities.resources is not None
    assert capabilities.resources.subscribe
    assert capabilities.resources.list_changed
    assert capabilities.logging is not None
    assert capabilities.completions is not None


async def test_a_service_that_cannot_start_gives_tool_errors_not_a_crash(tmp_path: Path) -> None:
    # key auth without a key: the service refuses to open
    settings = make_settings(
        tmp_path, provider="azure", endpoint="https://x.openai.azure.com", api_key=None, auth="key"
    )
    async with Client(build_server(settings, first_poll_delay=3600), mode="legacy") as client:
        first = await client.call_tool("list_batches", {})
        second = await client.call_tool("get_batch", {"batch_id": "batch_1"})
    assert error_kind(first) == error_kind(second) == "not_configured"  # AZURE_OPENAI_API_KEY is not set
