"""Tools that start, watch and stop batch jobs: create_batch, get_batch, list_batches, cancel_batch."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from aoai_batch.limits import DEFAULT_COMPLETION_WINDOW, MAX_USER_METADATA_PAIRS, MAX_WAIT_SECONDS
from aoai_batch.models import Batch, BatchEndpoint, BatchPage, BatchStatus
from tools.deps import MAX_RESULT_CHARS, deps, expected_errors, progress, result_chars
from tools.registry import ToolSpec

MAX_LISTED_ERRORS = 20

BatchId = Annotated[str, Field(description="The batch id, e.g. batch_abc123 (from create_batch or list_batches).")]


def trimmed(batch: Batch) -> Batch:
    """The batch with its error list shortened if it would make the result too large."""
    if len(batch.errors) > MAX_LISTED_ERRORS and result_chars(batch) > MAX_RESULT_CHARS // 2:
        return batch.model_copy(update={"errors": batch.errors[:MAX_LISTED_ERRORS]})
    return batch


def fitted(page: BatchPage) -> BatchPage:
    """The page cut short (has_more, last_id adjusted) so it stays under the result size limit."""
    batches = [trimmed(b) for b in page.batches]
    cut = len(batches)
    while cut > 1 and result_chars(BatchPage(batches=batches[:cut], has_more=True)) > MAX_RESULT_CHARS:
        cut = cut * 3 // 4
    if cut == len(batches):
        return page.model_copy(update={"batches": batches})
    return BatchPage(batches=batches[:cut], has_more=True, last_id=batches[cut - 1].id)


async def create_batch(
    input_file_id: Annotated[str, Field(description="An uploaded file's id (from upload_file or list_files).")],
    ctx: Context[Any, Any],
    endpoint: Annotated[
        BatchEndpoint, Field(description="The API every line calls; must match the lines' url.")
    ] = "/chat/completions",
    completion_window: Annotated[
        str, Field(description=f"How long Azure may take; only {DEFAULT_COMPLETION_WINDOW} exists.")
    ] = DEFAULT_COMPLETION_WINDOW,
    metadata: Annotated[
        dict[str, str] | None,
        Field(description=f"Up to {MAX_USER_METADATA_PAIRS} labels (short strings) stored with the batch."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Field(description="Any string; repeating a call with the same key returns the first batch, never a second."),
    ] = None,
    max_cost: Annotated[
        float | None, Field(ge=0, description="Refuse to start if the estimated cost (USD) is above this.")
    ] = None,
) -> Batch:
    """Start a batch job from an uploaded file. Returns at once with status 'validating';
    then call get_batch (with wait_seconds) to follow it, and fetch_results once it is completed."""
    state = deps(ctx)
    with expected_errors():
        service = await state.services.get()
        batch = await service.create_batch(
            input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata=metadata,
            idempotency_key=idempotency_key,
            max_cost=max_cost,
        )
    await state.watcher.created(batch)
    return trimmed(batch)


async def get_batch(
    batch_id: BatchId,
    ctx: Context[Any, Any],
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description=f"Wait up to this many seconds (0-{MAX_WAIT_SECONDS}) for the status to change.",
        ),
    ] = 0,
) -> Batch:
    """Get a batch's status and request counts, optionally waiting for a change (with progress).
    When it is completed (or failed, expired, cancelled), call fetch_results; otherwise call again later."""
    state = deps(ctx)
    with expected_errors():
        service = await state.services.get()
        batch = await service.get_batch(batch_id, wait_seconds=wait_seconds, progress=progress(ctx))
    await state.watcher.observed(batch)
    return trimmed(batch)


async def list_batches(
    ctx: Context[Any, Any],
    limit: Annotated[int, Field(ge=1, le=100, description="How many batches to return (1-100).")] = 20,
    after: Annotated[
        str | None, Field(description="Return batches after this id: pass the last_id of the previous page.")
    ] = None,
    status: Annotated[BatchStatus | None, Field(description="Only batches with this status.")] = None,
) -> BatchPage:
    """List batch jobs, newest first. If has_more is true, call again with after=last_id for the next page;
    call get_batch for one batch's details."""
    with expected_errors():
        service = await deps(ctx).services.get()
        page = await service.list_batches(limit=limit, after=after, status=status)
    return fitted(page)


async def cancel_batch(batch_id: BatchId, ctx: Context[Any, Any]) -> Batch:
    """Cancel a running batch. Work already done is kept: once the status is 'cancelled', call fetch_results
    for the partial results. A finished batch cannot be cancelled."""
    state = deps(ctx)
    with expected_errors():
        service = await state.services.get()
        batch = await service.cancel_batch(batch_id)
    await state.watcher.observed(batch)
    return trimmed(batch)


TOOLS = [
    ToolSpec(
        create_batch,
        title="Create batch job",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    ),
    ToolSpec(
        get_batch,
        title="Get batch status",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
    ),
    ToolSpec(
        list_batches,
        title="List batch jobs",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
    ),
    ToolSpec(
        cancel_batch,
        title="Cancel batch job",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    ),
]
