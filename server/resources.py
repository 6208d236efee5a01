"""The `batch://` resources (SPEC §4, and the runs' of §9) and `completion/complete` for batch and run ids.

Static resources and the completion handler get no `Context` from the SDK, so a middleware puts the lifespan
state in a context variable for the duration of each request; every handler here reads it from there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)
from pydantic import BaseModel

from aoai_batch.errors import ERROR_KEY, BatchToolError, NotFound
from aoai_batch.models import Batch
from aoai_batch.runs.models import Run
from aoai_batch.settings import config_view
from server.state import AppState
from tools.deps import advice

logger = logging.getLogger(__name__)

MAX_RESOURCE_CHARS = 20_000
MAX_COMPLETIONS = 100
RUNS_LISTED = 50  # a run's line is about 400 characters: 50 stay well inside MAX_RESOURCE_CHARS
JSON = "application/json"
BATCH_ID_TEMPLATES = frozenset({"batch://jobs/{batch_id}", "batch://jobs/{batch_id}/results"})
BATCH_ID_PROMPTS = frozenset({"troubleshoot_batch", "summarize_results"})
RUN_ID_TEMPLATES = frozenset({"batch://runs/{run_id}", "batch://runs/{run_id}/results"})

_state: ContextVar[AppState] = ContextVar("aoai_batch_state")


async def _bind_state(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    token = _state.set(ctx.lifespan_context)
    try:
        return await call_next(ctx)
    finally:
        _state.reset(token)


def current_state() -> AppState:
    return _state.get()


def _json(data: object) -> str:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


class JobLine(BaseModel):
    """A job in the `batch://jobs` list: enough to pick one, not the whole record."""

    id: str
    status: str
    terminal: bool
    created_at: str | None
    request_counts: dict[str, int]
    progress_percent: float | None
    results_path: str | None
    backend: str

    @classmethod
    def of(cls, batch: Batch) -> JobLine:
        return cls(
            id=batch.id,
            status=batch.status,
            terminal=batch.terminal,
            created_at=batch.created_at.isoformat() if batch.created_at else None,
            request_counts=batch.request_counts.model_dump(),
            progress_percent=batch.progress_percent,
            results_path=batch.results_path,
            backend=batch.backend,
        )


def jobs_listing(jobs: list[Batch]) -> dict[str, object]:
    """The newest jobs that fit in a resource, and how many there are in all."""
    lines: list[dict[str, object]] = []
    size = 0
    for job in jobs:
        line = JobLine.of(job).model_dump(mode="json")
        text = orjson.dumps(line, option=orjson.OPT_INDENT_2)
        size += len(text) + 4 * (text.count(b"\n") + 1) + 2  # nested two levels deeper, then ",\n"
        if size > MAX_RESOURCE_CHARS - 500:
            break
        lines.append(line)
    note = None if len(lines) == len(jobs) else "Only the newest jobs are listed; call list_batches to page."
    return {"total": len(jobs), "shown": len(lines), "jobs": lines, "note": note}


async def jobs_resource() -> str:
    with resource_errors("batch://jobs"):
        service = await current_state().services.get()
        jobs = await service.registry_jobs()
    return _json(jobs_listing(jobs))


@contextmanager
def resource_errors(uri: str) -> Iterator[None]:
    """The service's expected errors as the SDK reports a resource's, with the tools' advice, and their kind.

    Raised as `MCPError` rather than `ResourceError` (which the SDK turns into the same codes) because only
    then is the error's `data` ours to fill: the kind goes there under ERROR_KEY, as in a tool error's `_meta`.
    """
    try:
        yield
    except BatchToolError as exc:
        logger.info("Resource %r failed (%s): %r", uri, exc.kind, str(exc))
        code = INVALID_PARAMS if isinstance(exc, NotFound) else INTERNAL_ERROR  # the SDK's codes (SEP-2164)
        raise MCPError(code, advice(exc), data={"uri": uri, ERROR_KEY: exc.details()}) from exc


async def job_resource(batch_id: str) -> str:
    state = current_state()
    with resource_errors(f"batch://jobs/{batch_id}"):
        batch = await (await state.services.get()).registry_job(batch_id)
    await state.watcher.observed(batch)
    return _json(batch)


async def results_resource(batch_id: str) -> str:
    uri = f"batch://jobs/{batch_id}/results"
    with resource_errors(uri):
        summary = await (await current_state().services.get()).results_summary(batch_id)
        if summary is None:
            raise NotFound(f"No results fetched for {batch_id} yet; call fetch_results first.")
    return _json(summary)


async def file_resource(file_id: str) -> str:
    with resource_errors(f"batch://files/{file_id}"):
        info = await (await current_state().services.get()).get_file(file_id)
    return _json(info)


class RunLine(BaseModel):
    """A run in the `batch://runs` list: enough to pick one."""

    id: str
    name: str | None
    status: str
    terminal: bool
    created_at: str
    requests: int
    request_counts: dict[str, int]
    progress_percent: float
    shard_counts: dict[str, int]
    waiting_for: str | None
    results_path: str | None

    @classmethod
    def of(cls, run: Run) -> RunLine:
        return cls(
            id=run.id,
            name=run.name,
            status=run.status,
            terminal=run.terminal,
            created_at=run.created_at.isoformat(),
            requests=run.requests,
            request_counts=run.request_counts.model_dump(),
            progress_percent=run.progress_percent,
            shard_counts=run.shard_counts,
            waiting_for=run.waiting_for,
            results_path=run.results_path,
        )


async def runs_resource() -> str:
    with resource_errors("batch://runs"):
        runs = await current_state().runs.get()
        page = await runs.list_runs(limit=RUNS_LISTED)
    lines = [RunLine.of(run).model_dump(mode="json") for run in page.runs]
    note = "Only the newest runs are listed; call list_runs to page." if page.has_more else None
    return _json({"shown": len(lines), "runs": lines, "note": note})


async def run_resource(run_id: str) -> str:
    state = current_state()
    with resource_errors(f"batch://runs/{run_id}"):
        run = await (await state.runs.get()).get_run(run_id)
    await state.run_watcher.observed(run)
    return _json(run)


async def run_results_resource(run_id: str) -> str:
    uri = f"batch://runs/{run_id}/results"
    with resource_errors(uri):
        summary = await (await current_state().runs.get()).results_summary(run_id)
        if summary is None:
            raise NotFound(f"No results fetched for {run_id} yet; call fetch_run_results first.")
    return _json(summary)


async def config_resource() -> str:
    return _json(config_view(current_state().settings))


async def complete(
    ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: CompletionContext | None
) -> Completion:
    """Offer known batch ids for `batch_id` in the job templates and the prompts that take one; run ids for
    `run_id` in the run templates."""
    wants_batch_ids = argument.name == "batch_id" and (
        (isinstance(ref, ResourceTemplateReference) and ref.uri in BATCH_ID_TEMPLATES)
        or (isinstance(ref, PromptReference) and ref.name in BATCH_ID_PROMPTS)
    )
    wants_run_ids = (
        argument.name == "run_id" and isinstance(ref, ResourceTemplateReference) and ref.uri in RUN_ID_TEMPLATES
    )
    if not (wants_batch_ids or wants_run_ids):
        return Completion(values=[])
    try:
        if wants_run_ids:
            page = await (await current_state().runs.get()).list_runs(limit=MAX_COMPLETIONS)
            known = [run.id for run in page.runs]
        else:
            known = [job.id for job in await (await current_state().services.get()).registry_jobs()]
    except BatchToolError:  # completion is a convenience: offer nothing rather than fail the request
        return Completion(values=[])
    ids = [known_id for known_id in known if known_id.startswith(argument.value)]
    return Completion(values=ids[:MAX_COMPLETIONS], total=len(ids), has_more=len(ids) > MAX_COMPLETIONS)


def register_resources(server: MCPServer[Any]) -> None:
    server.middleware.append(_bind_state)
    server.resource(
        "batch://jobs",
        name="jobs",
        title="Batch jobs",
        mime_type=JSON,
        description="The batch jobs this server knows, newest first.",
    )(jobs_resource)
    server.resource(
        "batch://jobs/{batch_id}",
        name="job",
        title="Batch job",
        mime_type=JSON,
        description="One batch job's state (refreshed from the service while it runs). Subscribe for updates.",
    )(job_resource)
    server.resource(
        "batch://jobs/{batch_id}/results",
        name="job_results",
        title="Batch results summary",
        mime_type=JSON,
        description="The results summary of a batch, once fetch_results has run.",
    )(results_resource)
    server.resource(
        "batch://files/{file_id}",
        name="file",
        title="Uploaded file",
        mime_type=JSON,
        description="One uploaded file's metadata.",
    )(file_resource)
    server.resource(
        "batch://runs",
        name="runs",
        title="Runs",
        mime_type=JSON,
        description="The runs (jobs of any size, split into batches) this server knows, newest first.",
    )(runs_resource)
    server.resource(
        "batch://runs/{run_id}",
        name="run",
        title="Run",
        mime_type=JSON,
        description="One run's state: counts, shards, enqueued tokens, what it waits for. Subscribe for updates.",
    )(run_resource)
    server.resource(
        "batch://runs/{run_id}/results",
        name="run_results",
        title="Run results summary",
        mime_type=JSON,
        description="The merged results summary of a run, once fetch_run_results has run.",
    )(run_results_resource)
    server.resource(
        "batch://config",
        name="config",
        title="Configuration",
        mime_type=JSON,
        description=(
            "Backend, endpoint host, API version, auth mode, limits, poll interval, and where the state, "
            "the emulator's data and the workspace are (no secrets)."
        ),
    )(config_resource)
    server.completion()(complete)  # type: ignore[no-untyped-call]  # the SDK's decorator has no annotations
