"""MCP tool adapters: thin, one module per group, no business logic."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from tools import build, files, jobs, results


def register_tools(server: MCPServer[Any]) -> None:
    """Add the eight tools of SPEC §3 to `server`."""
    for group in (build, files, jobs, results):
        group.register(server)
