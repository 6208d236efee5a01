from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, PromptReference, ResourceTemplateReference

from aoai_batch.emulator import Emulator
from aoai_batch.errors import ERROR_KEY
from aoai_batch.models import Batch
from aoai_batch.settings import config_view
from server.app import build_server
from server.resources import MAX_RESOURCE_CHARS, jobs_listing
from server.state import AppState
from tests.support.batch_files import write_workspace_batch
from tests.support.mcp import MODES, make_settings, start_batch


async def read_json(client: Client, uri: str) -> object:
    result = await client.read_resource(uri)
    text = result.contents[0].text  # type: ignore[union-attr]
    assert len(text) <= MAX_RESOURCE_CHARS
    return json.loads(text)


@pytest.mark.parametrize("mode", MODES)
async def test_jobs_resource_lists_known_jobs_newest_first(
    app: MCPServer[AppState], workspace: Path, mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        first = await start_batch(client, write_workspace_batch(workspace, "a.jsonl"))
        second = await start_batch(client, write_workspace_batch(workspace, "b.jsonl"))
        listing = await read_json(client, "batch://jobs")
    assert isinstance(listing, dict)
    assert [job["id"] for job in listing["jobs"]] == [second["id"], first["id"]]
    assert listing["total"] == 2


@pytest.mark.parametrize("mode", MODES)
async def test_job_resource_is_the_batch(app: MCPServer[AppState], batch_file: Path, mode: str) -> None:
    async with Client(app, mode=mode) as client:
        created = await start_batch(client, batch_file)
        job = await read_json(client, f"batch://jobs/{created['id']}")
    assert Batch.model_validate(job).id == created["id"]


@pytest.mark.parametrize(
    "uri", ["batch://jobs/batch_unknown", "batch://jobs/batch_unknown/results", "batch://files/file-unknown"]
)
async def test_unknown_ids_are_resource_errors(app: MCPServer[AppState], uri: str) -> None:
    async with Client(app, mode="legacy") as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource(uri)
    assert refused.value.code == INVALID_PARAMS  # the SDK's code for a resource that does not exist
    assert refused.value.error.data == {"uri": uri, ERROR_KEY: {"kind": "not_found"}}


async def test_results_resource_before_fetching_is_an_error(app: MCPServer[AppState], batch_file: Path) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        with pytest.raises(MCPError) as refused:
            await client.read_resource(f"batch://jobs/{created['id']}/results")
    assert refused.value.code == INVALID_PARAMS
    assert refused.value.error.data[ERROR_KEY] == {"kind": "not_found"}
    assert "fetch_results" in refused.value.message


async def test_config_resource_describes_the_backend_without_secrets(tmp_path: Path, emulator: Emulator) -> None:
    settings = make_settings(tmp_path, api_key="test-key", http_token="http-token-value", openai_api_key="sk-value")
    async with Client(build_server(settings, transport=emulator.transport()), mode="legacy") as client:
        result = await client.read_resource("batch://config")
    text = result.contents[0].text  # type: ignore[union-attr]
    config = json.loads(text)
    assert config == config_view(settings).model_dump(mode="json")  # the same view as `aoai-batch-mcp config`
    assert config["backend"] == "emulator"
    assert config["workspace"] == [str(tmp_path / "ws")]
    assert config["state_path"] == str(tmp_path / "home" / "state.sqlite3")
    assert config["emulator_home"] == str(tmp_path / "home" / "emulator")
    for secret in ("test-key", "http-token-value", "sk-value"):
        assert secret not in text


def test_a_long_job_list_is_cut_to_fit_and_says_so() -> None:
    jobs = [
        Batch(id=f"batch_{n:05}", status="completed", terminal=True, backend="emulator", metadata={"n": "x" * 200})
        for n in range(500)
    ]
    listing = jobs_listing(jobs)
    assert listing["total"] == 500
    assert 0 < listing["shown"] < 500  # type: ignore[operator]
    assert listing["note"]
    assert len(json.dumps(listing, indent=2)) <= MAX_RESOURCE_CHARS


@pytest.mark.parametrize(
    "ref",
    [
        ResourceTemplateReference(type="ref/resource", uri="batch://jobs/{batch_id}"),
        ResourceTemplateReference(type="ref/resource", uri="batch://jobs/{batch_id}/results"),
        PromptReference(type="ref/prompt", name="troubleshoot_batch"),
        PromptReference(type="ref/prompt", name="summarize_results"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
async def test_batch_ids_complete_by_prefix(
    app: MCPServer[AppState],
    workspace: Path,
    ref: ResourceTemplateReference | PromptReference,
    mode: str,
) -> None:
    async with Client(app, mode=mode) as client:
        created = await start_batch(client, write_workspace_batch(workspace))
        prefix = str(created["id"])[:8]
        matching = await client.complete(ref, {"name": "batch_id", "value": prefix})
        nothing = await client.complete(ref, {"name": "batch_id", "value": "zzz-no-such-prefix"})
    assert matching.completion.values == [created["id"]]
    assert nothing.completion.values == []


async def test_other_arguments_get_no_completions(app: MCPServer[AppState]) -> None:
    ref = PromptReference(type="ref/prompt", name="plan_batch_job")
    async with Client(app, mode="legacy") as client:
        result = await client.complete(ref, {"name": "goal", "value": "b"})
    assert result.completion.values == []


async def test_a_service_that_cannot_start_is_a_resource_error_with_its_kind(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, provider="azure", endpoint="https://x.openai.azure.com", api_key=None, auth="key"
    )
    async with Client(build_server(settings, first_poll_delay=3600), mode="legacy") as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource("batch://jobs")
    assert refused.value.error.data[ERROR_KEY] == {"kind": "not_configured"}
    assert "AZURE_OPENAI_API_KEY" in refused.value.message  # the message, not the SDK's "Error reading resource"
