"""The tool that writes batch input files: build_batch_file."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from aoai_batch.models import BuildResult, ValidationReport
from tools.deps import MAX_RESULT_CHARS, client_roots, deps, expected_errors, result_chars
from tools.registry import ToolSpec

MAX_SHOWN_ISSUES = 10


def default_name() -> str:
    return f"batch-{datetime.now(UTC):%Y%m%d-%H%M%S}.jsonl"


def _shorter(report: ValidationReport) -> ValidationReport:
    return report.model_copy(update={"issues": report.issues[:MAX_SHOWN_ISSUES]})


def fitted(result: BuildResult) -> BuildResult:
    """The result with fewer listed issues per file if it would exceed the size limit (counts stay whole)."""
    if result_chars(result) <= MAX_RESULT_CHARS:
        return result
    return result.model_copy(update={"validation": [_shorter(r) for r in result.validation]})


async def build_batch_file(
    deployment: Annotated[str, Field(description="The Global-Batch deployment name every request uses (body.model).")],
    ctx: Context[Any, Any],
    prompts: Annotated[
        list[str] | None, Field(description="One user prompt per request. Give this, requests, or source_path.")
    ] = None,
    requests: Annotated[
        list[dict[str, Any]] | None,
        Field(description="One object per request: custom_id (optional), messages or prompt, and other body fields."),
    ] = None,
    source_path: Annotated[
        str | None, Field(description="A CSV, JSONL or JSON-array file of rows in the workspace, one request per row.")
    ] = None,
    template: Annotated[
        str | None,
        Field(
            description="User message built from each row, with {column} placeholders; {{ and }} for literal braces."
        ),
    ] = None,
    system_prompt: Annotated[str | None, Field(description="A system message added to every request.")] = None,
    id_field: Annotated[
        str | None, Field(description="The row field used as custom_id (default: row-1, row-2, ...).")
    ] = None,
    image_field: Annotated[
        str | None,
        Field(description="The row field holding an image path (in the workspace) or URL, sent with the message."),
    ] = None,
    endpoint: Annotated[
        str, Field(description="The API every request calls: /chat/completions or /responses.")
    ] = "/chat/completions",
    body: Annotated[
        dict[str, Any] | None,
        Field(description="Fields for every request body, e.g. max_tokens, temperature, response_format."),
    ] = None,
    output_path: Annotated[
        str | None, Field(description="Where to write the .jsonl file in the workspace (default: a new name).")
    ] = None,
    overwrite: Annotated[bool, Field(description="Replace an existing output file.")] = False,
) -> BuildResult:
    """Write a JSONL batch file from prompts, request objects or a CSV/JSONL/JSON file of rows, splitting it
    when it exceeds Azure's limits, and check it. Returns the files written, a token estimate and the check.
    Next: upload_file each file written."""
    state = deps(ctx)
    with expected_errors():
        roots = await client_roots(ctx)
        source = state.workspace.resolve(source_path, roots=roots, must_exist=True) if source_path else None
        target = state.workspace.output_path(output_path, default_name(), roots=roots)
        images_from = source.parent if source else state.workspace.default_dir

        def resolve_image(cell: str) -> Path:
            # Relative image paths start beside the source file; wherever they point, the workspace gate applies.
            return state.workspace.resolve(str(images_from / cell), roots=roots, must_exist=True)

        service = await state.services.get()
        # Imported on first use: the builder and validator add ~20 ms to start-up (bench/startup.py).
        from aoai_batch.builder import build_batch_file as build_file

        build = functools.partial(
            build_file,
            deployment=deployment,
            prompts=prompts,
            requests=requests,
            source_path=source,
            template=template,
            system_prompt=system_prompt,
            id_field=id_field,
            image_field=image_field,
            endpoint=endpoint,
            body=body,
            output_path=target,
            overwrite=overwrite,
            resolve_image=resolve_image,
            sources_home=service.sources_home,
            **service.file_rules.keywords(),
        )
        result = await anyio.to_thread.run_sync(build)
    return fitted(result)


TOOLS = [
    ToolSpec(
        build_batch_file,
        title="Build batch file",
        annotations=ToolAnnotations(
            # overwrite=true replaces an existing file, so the tool can be destructive.
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    ),
]
