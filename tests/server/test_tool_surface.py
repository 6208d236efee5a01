"""`--read-only` and `--tools`: the tools a server offers, judged by what each registered tool declares."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment
from mcp_types import ToolAnnotations

from aoai_batch.emulator import Emulator
from aoai_batch.errors import InvalidInput
from server.app import build_server, narrow_tools
from server.cli import main
from tests.support.cli import isolate_cli
from tests.support.mcp import WAIT, make_settings
from tests.support.paths import REPO_ROOT
from tools import all_tools
from tools.registry import ToolSurface
from tools.view import app_tools

STDIO_WAIT = 60.0  # a subprocess imports the SDKs first
READ_ONLY = sorted(t.name for t in all_tools() if t.annotations is not None and t.annotations.read_only_hint)
ALL = sorted(t.name for t in all_tools())
REGISTERED = sorted(t.name for t in [*all_tools(), *app_tools()])  # and the view's app-only tool, narrowed alike


def test_some_tools_change_nothing_and_some_do() -> None:
    """What the rest stands on: the registry has both kinds, and the read-only ones are the safe ones."""
    assert {"validate_batch_file", "get_batch", "list_batches", "list_files"} <= set(READ_ONLY)
    assert not {"upload_file", "create_batch", "cancel_batch", "build_batch_file"} & set(READ_ONLY)


async def listed(client: Client) -> list[str]:
    return sorted(tool.name for tool in (await client.list_tools()).tools)


async def test_read_only_serves_only_the_tools_that_change_nothing(tmp_path: Path, emulator: Emulator) -> None:
    server = build_server(make_settings(tmp_path, read_only=True), transport=emulator.transport())
    with anyio.fail_after(WAIT):
        async with Client(server) as client:
            names = await listed(client)
            refused = await client.call_tool("cancel_batch", {"batch_id": "batch_1"})
    assert names == READ_ONLY
    assert refused.is_error  # not offered is not callable


async def test_the_allow_list_serves_only_the_tools_it_names(tmp_path: Path, emulator: Emulator) -> None:
    server = build_server(make_settings(tmp_path), transport=emulator.transport(), tools=frozenset({"get_batch"}))
    with anyio.fail_after(WAIT):
        async with Client(server) as client:
            assert await listed(client) == ["get_batch"]


async def test_a_tool_registered_later_is_narrowed_by_what_it_declares(tmp_path: Path, emulator: Emulator) -> None:
    """Tools added after the registry's (another module's, an app-only view's) are judged the same way."""

    def peek() -> str:
        """Looks."""
        return "seen"

    def poke() -> str:
        """Changes."""
        return "done"

    server = build_server(make_settings(tmp_path, read_only=True), transport=emulator.transport())
    server.add_tool(peek, annotations=ToolAnnotations(read_only_hint=True))
    server.add_tool(poke)  # says nothing: taken to change things
    with anyio.fail_after(WAIT):
        async with Client(server) as client:
            names = await listed(client)
    assert "peek" in names
    assert "poke" not in names


async def test_narrowing_twice_is_narrowing_once(tmp_path: Path) -> None:
    server = build_server(make_settings(tmp_path))
    surface = ToolSurface(read_only=True, allowed=frozenset({"get_batch", "list_batches"}))
    await narrow_tools(server, surface)
    await narrow_tools(server, surface)
    assert sorted(tool.name for tool in await server.list_tools()) == ["get_batch", "list_batches"]


@pytest.mark.parametrize(
    ("surface", "names_in_error"),
    [
        (ToolSurface(allowed=frozenset({"get_batch", "no_such_tool"})), ["no_such_tool", "list_batches"]),
        (ToolSurface(read_only=True, allowed=frozenset({"get_batch", "cancel_batch"})), ["cancel_batch"]),
    ],
)
async def test_an_allow_list_the_server_cannot_serve_is_invalid_input(
    tmp_path: Path, surface: ToolSurface, names_in_error: list[str]
) -> None:
    server = build_server(make_settings(tmp_path))
    with pytest.raises(InvalidInput) as raised:
        await narrow_tools(server, surface)
    assert all(name in str(raised.value) for name in names_in_error)
    assert sorted(tool.name for tool in await server.list_tools()) == REGISTERED  # nothing removed


@pytest.mark.parametrize("args", [["--tools", "no_such_tool"], ["--tools", "get_batch,cancel_batch", "--read-only"]])
def test_serve_with_an_allow_list_it_cannot_serve_is_a_usage_error(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aoai-batch-mcp serve: ")
    assert "Traceback" not in err


def test_serve_with_an_unknown_tool_lists_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    assert main(["serve", "--tools", "no_such_tool"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in ALL)


def test_serve_with_an_empty_allow_list_is_argparses_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    with pytest.raises(SystemExit) as raised:
        main(["serve", "--tools", " , "])
    assert raised.value.code == 2


def stdio_server(tmp_path: Path, *args: str) -> StdioServerParameters:
    env = get_default_environment()
    env.update({"AOAI_BATCH_HOME": str(tmp_path / "home"), "AOAI_BATCH_WORKSPACE": str(tmp_path / "ws")})
    return StdioServerParameters(
        command=sys.executable, args=["-m", "server", "serve", *args], env=env, cwd=str(REPO_ROOT)
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--read-only"], READ_ONLY),
        (["--tools", "get_batch, list_batches"], ["get_batch", "list_batches"]),
        (["--read-only", "--tools", "list_files"], ["list_files"]),
    ],
)
async def test_over_stdio_the_flags_narrow_tools_list(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    with anyio.fail_after(STDIO_WAIT):
        async with Client(stdio_server(tmp_path, *args), mode="legacy") as client:
            assert await listed(client) == expected


async def test_over_stdio_the_read_only_setting_narrows_tools_list(tmp_path: Path) -> None:
    parameters = stdio_server(tmp_path)
    assert parameters.env is not None
    parameters.env["AOAI_BATCH_READ_ONLY"] = "true"
    with anyio.fail_after(STDIO_WAIT):
        async with Client(parameters, mode="legacy") as client:
            assert await listed(client) == READ_ONLY
