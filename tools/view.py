"""The job view's side of the tools (MCP Apps): which tools link to it, and the app-only tool it calls.

A host that speaks MCP Apps (`io.modelcontextprotocol/ui`) renders a linked tool's result in the view at
`VIEW_URI`; every other client reads the tool's text and structured result, which are unchanged. The view
then calls `view_job` every few seconds while the job (a batch or a run) runs, and for pages of result rows: the
model never needs it (`visibility: ["app"]`), so it is not among `tools.all_tools()`. A batch is read at the
registry's pace (asked again no faster than the poll interval), a run as the registry has it (the runs watcher
steps it): a view left open never speeds a job's polling up.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from aoai_batch.errors import InvalidInput
from aoai_batch.models import Batch, FetchSummary
from aoai_batch.results.pages import RowPage, read_page
from aoai_batch.runs.models import Run, RunResultsSummary
from tools.deps import ToolDeps, advice, deps, expected_errors
from tools.jobs import trimmed
from tools.registry import ToolSpec, build_tools
from tools.results import fitted
from tools.runs import fitted as fitted_run
from tools.runs import fitted_summary

VIEW_URI = "ui://aoai-batch/job-view.html"
VIEWED_TOOLS = ("get_batch", "fetch_results", "get_run", "fetch_run_results")
"""The tools whose results the view renders (`link_view` links them)."""
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
    """What the view shows of a batch or a run: its state, its results summary once fetched, and a page of rows."""

    batch: Batch | None = None
    run: Run | None = None
    results: FetchSummary | RunResultsSummary | None = None
    rows: RowPage | None = None
    refresh_seconds: float = Field(description="How long the view waits before asking again while the job runs.")


async def view_job(
    ctx: Context[Any, Any],
    batch_id: Annotated[str | None, Field(description="The batch to show (or run_id).")] = None,
    run_id: Annotated[str | None, Field(description="The run to show (or batch_id).")] = None,
    rows_offset: Annotated[
        int | None, Field(ge=0, description="Also return a page of result rows from here (0-based).")
    ] = None,
) -> JobView:
    """Refresh the job view: the batch or run, its results summary, and a page of result rows (for the view only)."""
    state = deps(ctx)
    if batch_id is not None and run_id is None:
        return await _view_batch(state, batch_id, rows_offset)
    if run_id is not None and batch_id is None:
        return await _view_run(state, run_id, rows_offset)
    problem = InvalidInput("Give exactly one of batch_id and run_id: the batch or the run to show.")
    raise ToolError(advice(problem)) from problem


async def _view_batch(state: ToolDeps, batch_id: str, rows_offset: int | None) -> JobView:
    with expected_errors():
        service = await state.services.get()
        batch = await service.registry_job(batch_id)  # the registry's pace: never faster than the poll interval
        results = await service.results_summary(batch_id)
        rows = await _page(results.results_path if results else None, rows_offset)
    await state.watcher.observed(batch)
    summary = fitted(results) if results else None
    return JobView(batch=trimmed(batch), results=summary, rows=rows, refresh_seconds=_refresh(service.poll_seconds))


async def _view_run(state: ToolDeps, run_id: str, rows_offset: int | None) -> JobView:
    """A run as the registry has it (the runs watcher steps it; the view never does)."""
    with expected_errors():
        service = await state.services.get()
        runs = await state.runs.get()
        run = await runs.get_run(run_id)
        results = await runs.results_summary(run_id)
        rows = await _page(results.results_path if results else None, rows_offset)
    await state.run_watcher.observed(run)
    summary = fitted_summary(results) if results else None
    return JobView(run=fitted_run(run), results=summary, rows=rows, refresh_seconds=_refresh(service.poll_seconds))


async def _page(results_path: str | None, rows_offset: int | None) -> RowPage | None:
    """A page of the results file's rows from `rows_offset`, once there is a file and a page was asked for."""
    if rows_offset is None or not results_path:
        return None
    path = Path(results_path)
    return await anyio.to_thread.run_sync(
        lambda: read_page(path, offset=rows_offset, limit=PAGE_ROWS, text_limit=PAGE_TEXT_CHARS)
    )


def _refresh(poll_seconds: float) -> float:
    """The view's refresh interval: the service's poll interval, within REFRESH_SECONDS."""
    low, high = REFRESH_SECONDS
    return min(max(poll_seconds, low), high)


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
