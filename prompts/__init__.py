"""MCP prompts: plan_batch_job, troubleshoot_batch, summarize_results."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from prompts import batch


def register_prompts(server: MCPServer[Any]) -> None:
    batch.register(server)
