"""Tools for batch input files: validate_batch_file, upload_file, list_files (build_batch_file is in tools/build.py)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from aoai_batch.limits import DEFAULT_FILE_EXPIRY_DAYS, MAX_FILE_EXPIRY_DAYS, MIN_FILE_EXPIRY_DAYS
from aoai_batch.models import FilePage, UploadResult, ValidationReport
from tools.deps import MAX_RESULT_CHARS, client_roots, deps, expected_errors, progress, result_chars
from tools.registry import ToolSpec

BatchFilePath = Annotated[
    str, Field(description="A .jsonl batch file inside the workspace (relative paths start in the workspace).")
]


async def validate_batch_file(path: BatchFilePath, ctx: Context[Any, Any]) -> ValidationReport:
    """Check a JSONL batch file against Azure's rules without uploading it: JSON per line, unique custom_id,
    one url and one deployment, request and size limits; estimated_cost prices it. If ok is false, fix the
    issues listed (line numbers are 1-based) or rebuild with build_batch_file; if ok, call upload_file."""
    state = deps(ctx)
    with expected_errors():
        file = state.workspace.resolve(path, roots=await client_roots(ctx), must_exist=True)
        service = await state.services.get()
        # Imported on first use: the validator adds ~7 ms to start-up (bench/startup.py).
        from aoai_batch.validation import validate_file

        check = functools.partial(validate_file, file, **service.file_rules.keywords())
        report = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)  # it only reads
    return service.pricing.priced_report(report)


async def upload_file(
    path: BatchFilePath,
    ctx: Context[Any, Any],
    validate: Annotated[bool, Field(description="Check the file first and refuse to upload it if it fails.")] = True,
    expires_after_days: Annotated[
        int | None,
        Field(
            ge=MIN_FILE_EXPIRY_DAYS,
            le=MAX_FILE_EXPIRY_DAYS,
            description=f"Delete the uploaded file after {MIN_FILE_EXPIRY_DAYS}-{MAX_FILE_EXPIRY_DAYS} days "
            f"(default {DEFAULT_FILE_EXPIRY_DAYS}).",
        ),
    ] = None,
    wait: Annotated[bool, Field(description="Wait until the service has processed the file.")] = True,
) -> UploadResult:
    """Upload a batch file (checked first, with progress) and wait until it is processed.
    Then call create_batch with the returned file id."""
    state = deps(ctx)
    with expected_errors():
        file = state.workspace.resolve(path, roots=await client_roots(ctx), must_exist=True)
        service = await state.services.get()
        return await service.upload_file(
            file, validate=validate, expires_after_days=expires_after_days, wait=wait, progress=progress(ctx)
        )


async def list_files(
    ctx: Context[Any, Any],
    limit: Annotated[int, Field(ge=1, le=100, description="How many files to return (1-100).")] = 20,
    after: Annotated[str | None, Field(description="The last_id of the previous page.")] = None,
    purpose: Annotated[str | None, Field(description="Only files of this purpose, e.g. batch or batch_output.")] = None,
) -> FilePage:
    """List uploaded files, newest first, with their ids for create_batch. If has_more, call again with
    after=last_id."""
    with expected_errors():
        service = await deps(ctx).services.get()
        page = await service.list_files(limit=limit, after=after, purpose=purpose)
    return fitted(page)


def fitted(page: FilePage) -> FilePage:
    """The page cut short (has_more, last_id adjusted) so it stays under the result size limit."""
    cut = len(page.files)
    while cut > 1 and result_chars(page.model_copy(update={"files": page.files[:cut]})) > MAX_RESULT_CHARS:
        cut = cut * 3 // 4
    if cut == len(page.files):
        return page
    return FilePage(files=page.files[:cut], has_more=True, last_id=page.files[cut - 1].id)


TOOLS = [
    ToolSpec(
        validate_batch_file,
        title="Validate batch file",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    ),
    ToolSpec(
        upload_file,
        title="Upload batch file",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    ),
    ToolSpec(
        list_files,
        title="List uploaded files",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
    ),
]
