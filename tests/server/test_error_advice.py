"""One piece of advice per error, in the words of its edge: the CLI names commands and flags, tools name tools.

The core's errors carry facts (`aoai_batch/errors.py`); `server.cli_support.error_line` and
`tools.deps.advice` each add what to do next, once.
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import TextContent
from pydantic import SecretStr

from aoai_batch.client import BatchClient, Connection, emulator_connection
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import (
    AuthenticationFailed,
    BatchToolError,
    ConnectionFailed,
    FileInTheWay,
    InvalidBatchFile,
    InvalidRequest,
    NotConfigured,
    NotFound,
    NotReady,
    RateLimited,
    ServiceUnavailable,
    SignInFailed,
)
from aoai_batch.models import Batch, UploadResult
from aoai_batch.settings import EmulatorSettings
from server.app import AppState
from server.cli import main
from server.cli_errors import error_line
from tests.support.batch_files import write_workspace_batch
from tests.support.cli import isolate_cli
from tests.support.mcp import start_batch
from tools.deps import advice

# Words of the other edge: a CLI message never names a tool or a parameter, a tool result never a command.
TOOL_WORDS = re.compile(r"\b(list_batches|list_files|get_batch|validate_batch_file|upload_file|wait_seconds)\b|=true")
CLI_WORDS = re.compile(r"aoai-batch-mcp|--\w")


def count(name: str, text: str) -> int:
    """How often `name` appears in `text` as a whole name (OPENAI_API_KEY is not inside AZURE_OPENAI_API_KEY)."""
    return len(re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, flags=re.IGNORECASE))


def once(name: str, text: str) -> bool:
    return count(name, text) == 1


# error, what the CLI line must name once, what the tool text must name once, names neither may show
CASES: list[tuple[BatchToolError, str, str, tuple[str, ...]]] = [
    (FileInTheWay(Path("/w/out.jsonl")), "--overwrite", "overwrite=true", ()),
    (
        InvalidBatchFile("/w/in.jsonl is not a valid batch file (line 2: bom).", path=Path("/w/in.jsonl")),
        "aoai-batch-mcp validate /w/in.jsonl",
        "validate_batch_file",
        (),
    ),
    (
        NotConfigured("The openai provider needs a key.", setting="OPENAI_API_KEY"),
        "OPENAI_API_KEY",
        "OPENAI_API_KEY",
        ("AZURE_OPENAI_API_KEY",),
    ),
    (NotFound("No batch batch_x.", missing="batch"), "aoai-batch-mcp list", "list_batches", ("files",)),
    (NotFound("No file file-x.", missing="file"), "aoai-batch-mcp files", "list_files", ("list_batches",)),
    (NotReady("Batch b1 is still in_progress.", batch_id="b1"), "status b1 --follow", "get_batch", ()),
    (
        AuthenticationFailed("api.openai.com refused the key.", backend="openai", auth="key"),
        "OPENAI_API_KEY",
        "OPENAI_API_KEY",
        ("AZURE_OPENAI_API_KEY", "az login"),
    ),
    (
        AuthenticationFailed("res.openai.azure.com refused the key.", backend="azure", auth="key"),
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        ("OPENAI_API_KEY",),
    ),
    (
        AuthenticationFailed("res.openai.azure.com refused the Entra ID token.", backend="azure", auth="entra"),
        "Cognitive Services OpenAI User",
        "Cognitive Services OpenAI User",
        (),
    ),
    (SignInFailed("Could not sign in with Entra ID."), "az login", "az login", ("EnvironmentCredential",)),
    (RateLimited("Rate limited: too many requests", retry_after=30), "retry after 30 s", "retry after 30 s", ()),
    (
        RateLimited("Rate limited: Rate limit reached. Retry after 30 seconds.", retry_after=30),
        "retry after 30 seconds",
        "retry after 30 seconds",
        ("retry after 30 s.",),
    ),
    (ServiceUnavailable("Server error at res.openai.azure.com (HTTP 503)."), "in a minute", "in a minute", ()),
    (
        ConnectionFailed("Could not reach res.openai.azure.com.", endpoint_setting="AZURE_OPENAI_ENDPOINT"),
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_ENDPOINT",
        ("OPENAI_BASE_URL",),
    ),
    (InvalidRequest("The service rejected the request: bad.", code="invalid_request"), "invalid_request", "", ()),
]


@pytest.mark.parametrize(("exc", "cli_name", "tool_name", "neither"), CASES, ids=lambda v: type(v).__name__)
def test_each_error_gets_its_edges_advice_once(
    exc: BatchToolError, cli_name: str, tool_name: str, neither: tuple[str, ...]
) -> None:
    cli, tool = error_line(exc), advice(exc)
    assert cli.startswith("error: ")
    assert exc.message in cli
    assert exc.message in tool
    assert once(cli_name, cli), cli
    assert not tool_name or once(tool_name, tool), tool
    assert TOOL_WORDS.search(cli) is None, cli
    assert CLI_WORDS.search(tool) is None, tool
    for name in neither:
        assert count(name, cli) == count(name, tool) == 0, (cli, tool)
    assert "\n" not in cli
    assert "\n" not in tool


@pytest.mark.parametrize(
    "plain",
    [
        NotReady("File file-1 is still pending after 600 s."),
        NotFound("The input file of batch b1 is gone."),
        ConnectionFailed("The batch service is shutting down; start the server again."),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_an_error_with_nothing_to_add_is_its_message_alone(plain: BatchToolError) -> None:
    assert error_line(plain) == f"error: {plain.message}"
    assert advice(plain) == plain.message


async def test_an_openai_key_refused_is_told_to_check_openai_api_key(emulator: Emulator) -> None:
    wrong = Connection(backend="openai", style="openai", endpoint="http://emulator.invalid/v1", api_key=SecretStr("x"))
    async with BatchClient(wrong, transport=emulator.transport(), max_retries=0) as client:
        with pytest.raises(AuthenticationFailed) as caught:
            await client.get_batch("batch_1")
    assert caught.value.backend == "openai"
    for text in (error_line(caught.value), advice(caught.value)):
        assert once("OPENAI_API_KEY", text), text
        assert count("AZURE_OPENAI_API_KEY", text) == 0, text


async def test_a_429_says_when_to_retry_once(tmp_path: Path) -> None:
    settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, key="k", faults="429:1,retry_after:30")
    with anyio.fail_after(20):
        async with Emulator(settings, clock=FakeClock()) as emulator:
            connection = emulator_connection("k", api_version="2024-10-21")
            async with BatchClient(connection, transport=emulator.transport(), max_retries=0) as client:
                with pytest.raises(RateLimited) as caught:
                    await client.get_batch("batch_1")
    assert caught.value.retry_after == 30
    for text in (error_line(caught.value), advice(caught.value)):
        assert len(re.findall(r"retry after", text, flags=re.IGNORECASE)) == 1, text


def test_the_cli_says_what_to_run_in_its_own_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    path = write_workspace_batch(tmp_path / "data")
    assert main(["upload", str(path), "--json"]) == 0
    file_id = UploadResult.model_validate_json(capsys.readouterr().out).file.id
    assert main(["create", file_id, "--json"]) == 0
    batch_id = Batch.model_validate_json(capsys.readouterr().out).id

    assert main(["results", batch_id]) == 1  # still validating: not ready
    not_ready = capsys.readouterr().err
    assert main(["status", "batch_missing"]) == 1
    missing = capsys.readouterr().err
    assert once(f"status {batch_id} --follow", not_ready), not_ready
    assert once("aoai-batch-mcp list", missing), missing
    assert count("list", missing) == 1, missing  # the emulator's own 404 message gives no advice of its own
    for text in (not_ready, missing):
        assert TOOL_WORDS.search(text) is None, text


async def test_a_tool_says_what_to_call_in_its_own_words(app: MCPServer[AppState], batch_file: Path) -> None:
    async with Client(app, mode="legacy") as client:
        created = await start_batch(client, batch_file)
        not_ready = await client.call_tool("fetch_results", {"batch_id": created["id"]})
        missing = await client.call_tool("get_batch", {"batch_id": "batch_missing"})
    texts = []
    for result in (not_ready, missing):
        assert result.is_error
        texts.append(" ".join(c.text for c in result.content if isinstance(c, TextContent)))
    assert once("get_batch", texts[0]), texts[0]
    assert once("list_batches", texts[1]), texts[1]
    for text in texts:
        assert CLI_WORDS.search(text) is None, text
