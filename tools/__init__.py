"""MCP tool adapters: thin, one module per group, no business logic."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool

from tools import build, files, jobs, results, runs
from tools.registry import build_tools
from tools.view import VIEWED_TOOLS, link_view


def all_tools() -> list[Tool]:
    """The tools of SPEC §3 (and list_files, §7), and the runs' (§9); those the job view renders link to it
    (`tools.view`)."""
    tools = build_tools([*build.TOOLS, *files.TOOLS, *jobs.TOOLS, *results.TOOLS, *runs.TOOLS])
    link_view(tools, VIEWED_TOOLS)
    return tools
