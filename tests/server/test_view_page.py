"""The job view's page as a resource (server/view.py): an MCP Apps page a host can render under its default CSP."""

from __future__ import annotations

import re

import pytest
from mcp import Client
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.server.mcpserver import MCPServer
from mcp_types import TextResourceContents

from server.state import AppState
from tests.support.apps import APPS_HOST
from tests.support.mcp import MODES
from tools.view import VIEW_URI

# What would reach the network, which the hosts' default CSP (connect-src 'none', no other origins) refuses.
OUTSIDE = re.compile(r"""(src|href)\s*=|<link\b|@import|url\(|https?://|fetch\(|XMLHttpRequest|WebSocket""", re.I)


async def read_view(app: MCPServer[AppState], mode: str) -> TextResourceContents:
    async with Client(app, mode=mode, extensions=[APPS_HOST]) as client:
        read = await client.read_resource(VIEW_URI)
    (content,) = read.contents
    assert isinstance(content, TextResourceContents)
    return content


@pytest.mark.parametrize("mode", MODES)
async def test_the_view_is_served_as_an_mcp_app_page(app: MCPServer[AppState], mode: str) -> None:
    content = await read_view(app, mode)
    assert content.mime_type == APP_MIME_TYPE
    assert content.meta == {"ui": {"prefersBorder": True}}
    assert content.text.startswith("<!doctype html>")


async def test_the_view_needs_nothing_from_the_network(app: MCPServer[AppState]) -> None:
    text = (await read_view(app, "legacy")).text
    assert OUTSIDE.findall(text) == []
    assert "ui/initialize" in text
    assert "innerHTML" not in text  # answers are a model's output: set as text only


async def test_the_server_advertises_the_apps_extension(app: MCPServer[AppState]) -> None:
    # In the 2026 era: the SDK's 2025-11-25 handshake has no `extensions` in the server's capabilities.
    async with Client(app, mode="auto", extensions=[APPS_HOST]) as client:
        extensions = client.server_capabilities.extensions if client.server_capabilities else None
    assert extensions is not None
    assert EXTENSION_ID in extensions
