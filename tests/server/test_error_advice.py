"""One piece of advice per error, in the words of its edge: the CLI names commands and flags, tools name tools.

The core's errors carry facts (`aoai_batch/errors.py`); `server.cli_errors.error_line` and
`tools.deps.advice` each add what to do next, once, and nothing between the core and them adds more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import TextContent
from pydantic import SecretStr

from aoai_batch.client import BatchClient, Connection, emulator_connection
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import (
    AuthenticationFailed,
    BadPriceFile,
    BatchToolError,
    ConnectionFailed,
    CostAboveLimit,
    FileInTheWay,
    InvalidBatchFile,
    InvalidInput,
    InvalidRequest,
    NoSpace,
    NotAFileId,
    NotConfigured,
    NotFound,
    NotReady,
    NotWritable,
    PathNotAllowed,
    RateLimited,
    RegistryLocked,
    ServiceUnavailable,
    SignInFailed,
    UnknownDeployment,
)
from aoai_batch.models import Batch, UploadResult
from aoai_batch.service import BatchService
from aoai_batch.settings import EmulatorSettings, Settings
from server.cli import main
from server.cli_errors import error_line
from server.state import AppState
from tests.support.batch_files import write_workspace_batch
from tests.support.cli import isolate_cli
from tests.support.mcp import error_kind, start_batch
from tools.deps import advice

# Words of the other edge: a CLI message never names a tool or a parameter, a tool result never a command.
TOOL_WORDS = re.compile(
    r"\b(list_batches|list_files|get_batch|validate_batch_file|upload_file|create_batch|wait_seconds"
    r"|expires_after_days|completion_window)\b|=true"
)
# A command as the CLI's advice quotes it; the program's name alone ("another aoai-batch-mcp process") is none.
CLI_WORDS = re.compile(r"`aoai-batch-mcp|--\w")


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
    (
        BadPriceFile("The price file /w/p.toml, entry models.'x': source must say where.", path="/w/p.toml"),
        "AOAI_BATCH_PRICES",
        "AOAI_BATCH_PRICES",
        (),
    ),
    (
        CostAboveLimit("The batch would cost up to USD 3, above the limit of 1.", max_cost=1, estimate=3),
        "--max-cost",
        "max_cost",
        (),
    ),
    (
        CostAboveLimit("A cost limit of 1 was given, but the cost cannot be estimated.", max_cost=1, estimate=None),
        "--max-cost",
        "max_cost",
        (),
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
    (
        NotAFileId("in.jsonl is a local file path, not the id of an uploaded file.", value="in.jsonl", given="path"),
        "aoai-batch-mcp upload in.jsonl",
        "upload_file",
        (),
    ),
    (
        NotAFileId("batch_abc is a batch id, not the id of an uploaded file.", value="batch_abc", given="batch"),
        "aoai-batch-mcp status batch_abc",
        "get_batch",
        ("upload",),
    ),
    # the core says what to do itself, in words both edges share: neither edge adds to it
    (
        InvalidInput("The path is empty; give a file name inside the workspace."),
        "give a file name",
        "give a file name",
        (),
    ),
    (
        PathNotAllowed("'../x' contains '..'; give a path inside the workspace (/w)."),
        "give a path inside",
        "give a path inside",
        (),
    ),
    (
        UnknownDeployment("gpt-5", ["gpt-4o-mini", "gpt-4o"]),
        "the deployments are",
        "the deployments are",
        ("list_deployments",),
    ),
    (
        NotWritable("Cannot write into /w: Permission denied; choose another output folder.", folder="/w"),
        "choose another output folder",
        "choose another output folder",
        (),
    ),
    (
        NoSpace(
            "Cannot write into /w: No space left on device; free some space there or choose another output folder.",
            folder="/w",
        ),
        "free some space",
        "free some space",
        ("in a minute",),
    ),
    (
        RegistryLocked(
            "The job registry /h/state.sqlite3 is locked by another aoai-batch-mcp process using the same home (/h) "
            "and was not freed within 30 s; wait for that process to finish (or stop it) and try again."
        ),
        "wait for that process",
        "wait for that process",
        ("in a minute",),
    ),
]


def tree(root: type[BatchToolError] = BatchToolError) -> Iterator[type[BatchToolError]]:
    for child in root.__subclasses__():
        yield child
        yield from tree(child)


def test_every_error_class_has_a_row() -> None:
    assert {type(exc) for exc, *_ in CASES} == set(tree())


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
    assert (error_kind(not_ready), error_kind(missing)) == ("not_ready", "not_found")
    texts = [" ".join(c.text for c in result.content if isinstance(c, TextContent)) for result in (not_ready, missing)]
    assert once("get_batch", texts[0]), texts[0]
    assert once("list_batches", texts[1]), texts[1]
    for text in texts:
        assert CLI_WORDS.search(text) is None, text


@pytest.mark.parametrize(
    ("input_file_id", "kind", "next_tool"),
    [
        ("in.jsonl", "invalid_input", "upload_file"),
        ("batch_abc", "invalid_input", "get_batch"),
        ("file-gone", "not_found", "list_files"),
    ],
)
async def test_create_batch_advice_comes_from_the_table_once(
    app: MCPServer[AppState], batch_file: Path, input_file_id: str, kind: str, next_tool: str
) -> None:
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool("create_batch", {"input_file_id": input_file_id})
    text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
    assert error_kind(result) == kind
    assert once(next_tool, text), text
    assert CLI_WORDS.search(text) is None, text


@pytest.mark.parametrize(
    ("file_id", "command"),
    [
        ("in.jsonl", "aoai-batch-mcp upload in.jsonl"),
        ("batch_abc", "aoai-batch-mcp status batch_abc"),
        ("file-gone", "aoai-batch-mcp files"),
    ],
)
def test_create_advice_comes_from_the_table_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], file_id: str, command: str
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    write_workspace_batch(tmp_path, "in.jsonl")
    assert main(["create", file_id]) == 1
    err = capsys.readouterr().err
    assert once(command, err), err
    assert TOOL_WORDS.search(err) is None, err


def test_a_json_command_prints_the_error_with_its_kind_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    assert main(["status", "batch_missing", "--json"]) == 1  # the exit code is what it was
    out, err = capsys.readouterr()
    error = orjson.loads(out)["error"]
    assert error["kind"] == "not_found"
    assert err == f"error: {error['message']}\n"  # the same line for people, on stderr
    assert once("aoai-batch-mcp list", error["message"]), error


def test_a_json_validate_of_a_missing_file_prints_the_error_with_its_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "missing.jsonl"), "--json"]) == 2
    assert orjson.loads(capsys.readouterr().out)["error"]["kind"] == "invalid_input"


async def test_the_services_own_checks_name_no_tool_parameter(tmp_path: Path, emulator: Emulator) -> None:
    # The tools' input schemas and the CLI's argument types refuse these first; the service's second line
    # of defence speaks to both, so it names neither's words.
    settings = Settings.model_validate(
        {"home": tmp_path / "home", "provider": "emulator", "api_key": emulator.key, "workspace": str(tmp_path)}
    )
    path = write_workspace_batch(tmp_path)
    refused: list[InvalidInput] = []
    async with BatchService.open(settings, transport=emulator.transport()) as service:
        for call in (
            service.get_batch("batch_1", wait_seconds=51),
            service.upload_file(path, expires_after_days=40),
            service.create_batch("file-1", completion_window="7d"),
            service.create_batch("file-1", endpoint="/v1/images"),
            service.create_batch("file-1", idempotency_key=" "),
            service.create_batch("file-1", metadata={"idempotency_key": "x"}),
        ):
            with pytest.raises(InvalidInput) as caught:
                await call
            refused.append(caught.value)
    for exc in refused:
        assert TOOL_WORDS.search(str(exc)) is None, exc
        assert CLI_WORDS.search(str(exc)) is None, exc
