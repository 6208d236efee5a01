"""The job view (MCP Apps, `io.modelcontextprotocol/ui`): its `ui://` page and who may see its app-only tool.

`view.html` beside this module is the whole view: one self-contained page (inline CSS and JS, no network, so
it works under the hosts' default CSP) that renders a batch, a run, or their results summary, and calls the
app-only tool `view_job` through the host while the job runs. `tools/view.py` links the tools to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.apps import Apps, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer

from tools.view import VIEW_URI, is_app_only

VIEW_HTML = Path(__file__).with_name("view.html")


def view_extension() -> Apps:
    """The Apps extension: advertises `io.modelcontextprotocol/ui` and serves the view's page."""
    apps = Apps()
    apps.add_html_resource(
        VIEW_URI,
        VIEW_HTML.read_text(encoding="utf-8"),
        name="job_view",
        title="Batch job view",
        description="Progress, counts and results of a batch or run, for hosts that show MCP Apps.",
        prefers_border=True,
    )
    return apps


async def _hide_app_only_tools(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """`tools/list` without the app-only tools for a client that cannot show the view: it could not use them.

    A host that shows views gets them, marked `visibility: ["app"]`, and keeps them from its model itself.
    """
    result = await call_next(ctx)
    if ctx.method != "tools/list" or client_supports_apps(ctx):
        return result
    if not (isinstance(result, dict) and isinstance(result.get("tools"), list)):  # this tier sees it serialised
        return result
    return {**result, "tools": [tool for tool in result["tools"] if not is_app_only(tool.get("_meta"))]}


def install_view(server: MCPServer[Any]) -> None:
    server.middleware.append(_hide_app_only_tools)
