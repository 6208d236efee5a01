"""The job view's side of the tools (MCP Apps): which tools link to it, and the app-only tool it calls.

A host that speaks MCP Apps (`io.modelcontextprotocol/ui`) renders a linked tool's result in the view at
`VIEW_URI`; every other client reads the tool's text and structured result, which are unchanged. The view
then calls `view_job` every few seconds while the job runs, and for pages of result rows: the model never
needs it (`visibility: ["app"]`), so it is not among `tools.all_tools()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from aoai_batch.models import Batch, FetchSummary
from aoai_batch.results.pages import RowPage, read_page
from tools.deps import deps, expected_errors
from tools.jobs import BatchId, trimmed
from tools.registry import ToolSpec, build_tools
from tools.results import fitted

VIEW_URI = "ui://aoai-batch/job-view.html"
VIEWED_TOOLS = ("get_batch", "fetch_results")
"""The tools whose results the view renders (`link_view` adds more, e.g. the runs' tools)."""
PAGE_ROWS = 20
PAGE_TEXT_CHARS = 400  # a page of 20 rows stays well under the result size limit
REFRESH_SECONDS = (2.0, 10.0)  # the view's refresh interval: the service's poll interval, kept in these bounds


def view_meta(uri: str = VIEW_URI, *, app_only: bool = False) -> dict[str, Any]:
    """A tool's `_meta` linking it to the view: `ui.resourceUri`, and the flat `ui/resourceUri` older hosts read."""
    ui: dict[str, Any] = {"resourceUri": uri}
    if app_only:
        ui["visibility"] = ["app"]
    return {"ui": ui, "ui/resourceUri": uri}


def link_view(tools: Iterable[Tool], names: Iterable[str], uri: str = VIEW_URI) -> None:
    """Link the tools called `names` to the view at `uri` (their other `_meta` keys are kept)."""
    wanted = set(names)
    for tool in tools:
        if tool.name in wanted:
            tool.meta = {**(tool.meta or {}), **view_meta(uri)}


def is_app_only(meta: dict[str, Any] | None) -> bool:
    """Whether a tool's `_meta` keeps it from the model (only a view may call it)."""
    ui = (meta or {}).get("ui")
    visibility = ui.get("visibility") if isinstance(ui, dict) else None
    return isinstance(visibility, list) and "model" not in visibility


class JobView(BaseModel):
    """What the view shows of a batch: its state, its results summary once fetched, and a page of rows."""

    batch: Batch
    results: FetchSummary | None = None
    rows: RowPage | None = None
    refresh_seconds: float = Field(description="How long the view waits before asking again while the job runs.")


async def view_job(
    batch_id: BatchId,
    ctx: Context[Any, Any],
    rows_offset: Annotated[
        int | None, Field(ge=0, description="Also return a page of result rows from here (0-based).")
    ] = None,
) -> JobView:
    """Refresh the job view: the batch, its results summary, and a page of result rows (for the view only)."""
    state = deps(ctx)
    with expected_errors():
        service = await state.services.get()
        batch = await service.registry_job(batch_id)  # the registry's pace: never faster than the poll interval
        results = await service.results_summary(batch_id)
        rows = None
        if rows_offset is not None and results is not None and results.results_path:
            path = Path(results.results_path)
            rows = await anyio.to_thread.run_sync(
                lambda: read_page(path, offset=rows_offset, limit=PAGE_ROWS, text_limit=PAGE_TEXT_CHARS)
            )
    await state.watcher.observed(batch)
    low, high = REFRESH_SECONDS
    refresh = min(max(service.poll_seconds, low), high)
    summary = fitted(results) if results else None
    return JobView(batch=trimmed(batch), results=summary, rows=rows, refresh_seconds=refresh)


def app_tools() -> list[Tool]:
    """The tools only the view calls, marked `visibility: ["app"]`."""
    tools = build_tools(
        [
            ToolSpec(
                view_job,
                title="Refresh job view",
                annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
            )
        ]
    )
    for tool in tools:
        tool.meta = view_meta(app_only=True)
    return tools
