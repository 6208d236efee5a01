"""What a client sees first: the instructions (the workflow in five lines) and the icons of the server and tools."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import Icon

from server.app import build_server
from server.state import AppState
from tests.support.mcp import MODES, make_settings
from tools.icons import TOOL_GLYPHS, tool_icons

SVG_URI = "data:image/svg+xml,"


def assert_themed(icons: list[Icon] | None) -> None:
    assert icons is not None
    assert sorted(icon.theme or "" for icon in icons) == ["dark", "light"]
    for icon in icons:
        assert icon.src.startswith(SVG_URI)
        svg = unquote(icon.src.removeprefix(SVG_URI))
        assert svg.startswith("<svg xmlns='http://www.w3.org/2000/svg'")
        assert svg.endswith("</svg>")
        assert "#" not in icon.src  # escaped: a valid URI
        assert "<" not in icon.src
    light, dark = (next(icon.src for icon in icons if icon.theme == theme) for theme in ("light", "dark"))
    assert light != dark


@pytest.mark.parametrize("mode", MODES)
async def test_the_instructions_are_the_workflow_in_five_lines(tmp_path: Path, mode: str) -> None:
    async with Client(build_server(make_settings(tmp_path)), mode=mode) as client:
        instructions = client.instructions
    assert instructions is not None
    lines = instructions.splitlines()
    assert len(lines) == 5
    for step, tool in enumerate(["build_batch_file", "upload_file", "get_batch", "fetch_results"], start=1):
        assert lines[step].startswith(f"{step}. ")
        assert tool in lines[step]
    assert "max_cost" in instructions
    assert str(tmp_path / "ws") in instructions


@pytest.mark.parametrize("mode", MODES)
async def test_the_server_has_an_icon_for_light_and_dark_themes(tmp_path: Path, mode: str) -> None:
    async with Client(build_server(make_settings(tmp_path)), mode=mode) as client:
        info = client.server_info
    assert info is not None
    assert_themed(info.icons)


async def test_every_tool_has_its_own_icon_for_light_and_dark_themes(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        tools = (await client.list_tools()).tools
    for tool in tools:
        assert_themed(tool.icons)
    assert {tool.name for tool in tools} == set(TOOL_GLYPHS)
    assert len({tool.icons[0].src for tool in tools if tool.icons}) == len(tools)


def test_a_tool_without_a_glyph_of_its_own_gets_the_servers() -> None:
    assert_themed(tool_icons("a_future_tool"))
