"""`upload`, `files`, `create`, `status`, `list`, `cancel`: script-friendly mirrors of the batch tools.

Exit codes: 0 done, 1 an expected failure (the message goes to stderr, no traceback), 2 usage.
`--json` prints the result model's JSON; otherwise a short readable table.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import get_args

import anyio
from pydantic import BaseModel

from aoai_batch.cost import describe_estimate
from aoai_batch.limits import (
    COMPLETION_WINDOWS,
    DEFAULT_COMPLETION_WINDOW,
    DEFAULT_FILE_EXPIRY_DAYS,
    MAX_FILE_EXPIRY_DAYS,
    MAX_USER_METADATA_PAIRS,
    MAX_WAIT_SECONDS,
    MIN_FILE_EXPIRY_DAYS,
)
from aoai_batch.models import Batch, BatchEndpoint, BatchError, BatchPage, BatchStatus, FilePage, UploadResult
from aoai_batch.service import TRANSIENT_ERRORS, BatchService
from server.cli_args import FAILED, OK, float_in, int_in
from server.cli_support import ProgressBar, add_service_command, progress_bar_for, progress_for


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    upload = add_service_command(subparsers, "upload", "Check and upload a JSONL batch file.", _upload, _show_upload)
    upload.add_argument("path", type=Path, help="the JSONL batch file")
    upload.add_argument("--no-validate", action="store_true", help="upload without checking the file first")
    upload.add_argument(
        "--expires-after-days",
        type=int_in(MIN_FILE_EXPIRY_DAYS, MAX_FILE_EXPIRY_DAYS),
        metavar=f"{MIN_FILE_EXPIRY_DAYS}-{MAX_FILE_EXPIRY_DAYS}",
        help="days until the service deletes the file "
        f"(default: AOAI_BATCH_FILE_EXPIRY_DAYS, {DEFAULT_FILE_EXPIRY_DAYS})",
    )
    upload.add_argument("--no-wait", action="store_true", help="return before the service has processed the file")

    files = add_service_command(subparsers, "files", "List uploaded files, newest first.", _files, _show_files)
    files.add_argument("--limit", type=int_in(1, 100), default=20, metavar="1-100", help="how many files to show")
    files.add_argument("--after", help="the last id of the previous page")
    files.add_argument("--purpose", help="only files of this purpose (batch, batch_output)")

    create = add_service_command(subparsers, "create", "Start a batch job on an uploaded file.", _create, _show_batch)
    create.add_argument("file_id", help="the uploaded input file's id")
    create.add_argument(
        "--endpoint",
        default="/chat/completions",
        choices=get_args(BatchEndpoint),
        help="the API every line of the file calls (it must match the lines' url)",
    )
    create.add_argument(
        "--completion-window",
        default=DEFAULT_COMPLETION_WINDOW,
        choices=COMPLETION_WINDOWS,
        help=f"how long the service may take ({DEFAULT_COMPLETION_WINDOW} is the only window Azure offers)",
    )
    create.add_argument(
        "--metadata",
        action="append",
        default=[],
        type=_pair,
        metavar="KEY=VALUE",
        help=f"a label stored with the batch (repeatable, up to {MAX_USER_METADATA_PAIRS})",
    )
    create.add_argument("--idempotency-key", help="the same key never starts a second batch")
    create.add_argument(
        "--max-cost",
        type=float_in(0),
        metavar="AMOUNT",
        help="refuse to start when the estimated cost (in the price book's currency, USD) is above AMOUNT",
    )

    status = add_service_command(
        subparsers, "status", "Show a batch job's status.", _status, _show_batch, outcome=_status_outcome
    )
    status.add_argument("batch_id", help="the batch's id (from create or list)")
    waiting = status.add_mutually_exclusive_group()
    waiting.add_argument(
        "--wait",
        type=float_in(0, MAX_WAIT_SECONDS),
        default=0,
        metavar="SECONDS",
        help=f"wait up to this many seconds (0-{MAX_WAIT_SECONDS}) for the status to change",
    )
    waiting.add_argument(
        "--follow",
        action="store_true",
        help="wait until the batch has finished, with a progress bar; exit 0 if it completed, 1 if not",
    )

    listing = add_service_command(subparsers, "list", "List batch jobs, newest first.", _list, _show_page)
    listing.add_argument("--limit", type=int_in(1, 100), default=20, metavar="1-100", help="how many to list")
    listing.add_argument("--after", metavar="BATCH_ID", help="the last id of the previous page")
    listing.add_argument(
        "--status",
        type=str.lower,
        choices=get_args(BatchStatus),
        metavar="STATUS",
        help="only jobs with this status: " + ", ".join(get_args(BatchStatus)),
    )

    cancel = add_service_command(subparsers, "cancel", "Cancel a running batch job.", _cancel, _show_batch)
    cancel.add_argument("batch_id", help="the batch's id (from create or list)")


async def _upload(service: BatchService, args: argparse.Namespace) -> BaseModel:
    return await service.upload_file(
        args.path,
        validate=not args.no_validate,
        expires_after_days=args.expires_after_days,
        wait=not args.no_wait,
        progress=progress_for(args),
    )


async def _files(service: BatchService, args: argparse.Namespace) -> BaseModel:
    return await service.list_files(limit=args.limit, after=args.after, purpose=args.purpose)


async def _create(service: BatchService, args: argparse.Namespace) -> BaseModel:
    return await service.create_batch(
        args.file_id,
        endpoint=args.endpoint,
        completion_window=args.completion_window,
        metadata=dict(args.metadata) or None,
        idempotency_key=args.idempotency_key,
        max_cost=args.max_cost,
    )


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


async def _status(service: BatchService, args: argparse.Namespace) -> BaseModel:
    if args.follow:
        return await follow(service, args.batch_id, progress_bar_for(args))
    return await service.get_batch(args.batch_id, wait_seconds=args.wait, progress=progress_for(args))


async def follow(service: BatchService, batch_id: str, bar: ProgressBar | None) -> Batch:
    """Poll at the backend's interval until the batch is terminal; a failed poll is retried, not fatal."""
    batch = await service.get_batch(batch_id)
    try:
        while not batch.terminal:
            await _show_progress(bar, batch)
            await anyio.sleep(service.poll_seconds)
            with contextlib.suppress(*TRANSIENT_ERRORS):
                batch = await service.get_batch(batch_id)
        await _show_progress(bar, batch)
    finally:
        if bar is not None:
            bar.finish()
    return batch


async def _show_progress(bar: ProgressBar | None, batch: Batch) -> None:
    if bar is None:
        return
    counts = batch.request_counts
    done = counts.completed + counts.failed
    await bar(done, counts.total or None, f"{batch.id} {batch.status} ({done}/{counts.total} requests)")


def _status_outcome(batch: Batch, args: argparse.Namespace) -> int:
    """With --follow the exit code says how the batch ended: 0 completed, 1 failed, expired or cancelled."""
    return FAILED if args.follow and batch.status != "completed" else OK


async def _list(service: BatchService, args: argparse.Namespace) -> BaseModel:
    return await service.list_batches(limit=args.limit, after=args.after, status=args.status)


async def _cancel(service: BatchService, args: argparse.Namespace) -> BaseModel:
    return await service.cancel_batch(args.batch_id)


# readable output


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _table(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _show_batch(batch: Batch) -> str:
    counts = batch.request_counts
    progress = f"{batch.progress_percent:.0f}%" if batch.progress_percent is not None else "-"
    rows = [
        ("id", batch.id),
        ("status", batch.status + (" (finished)" if batch.terminal else "")),
        ("progress", f"{progress} ({counts.completed} done, {counts.failed} failed of {counts.total})"),
        ("endpoint", batch.endpoint or "-"),
        ("input file", batch.input_file_id or "-"),
        ("output file", batch.output_file_id or "-"),
        ("error file", batch.error_file_id or "-"),
        ("created", _when(batch.created_at)),
        ("expires", _when(batch.expires_at)),
        ("backend", batch.backend),
    ]
    rows += [("input path", batch.input_path)] if batch.input_path else []
    rows += [("results path", batch.results_path)] if batch.results_path else []
    rows += [("metadata", ", ".join(f"{k}={v}" for k, v in batch.metadata.items()))] if batch.metadata else []
    rows += [("error", _error_text(error)) for error in batch.errors]
    return _table(rows)


def _error_text(error: BatchError) -> str:
    where = f" (line {error.line})" if error.line else ""
    return f"{error.code or '-'}: {error.message or ''}{where}"


def _show_upload(result: UploadResult) -> str:
    info = result.file
    rows = [
        ("file id", info.id),
        ("name", info.filename or "-"),
        ("bytes", str(info.bytes) if info.bytes is not None else "-"),
        ("status", info.status or "-"),
        ("expires", _when(info.expires_at)),
    ]
    if result.validation is not None:
        report = result.validation
        rows.append(("checked", f"{report.requests} requests, ~{report.estimated_input_tokens} input tokens"))
    if result.estimated_cost is not None:
        rows.append(("cost", describe_estimate(result.estimated_cost)))
    return _table(rows)


def _show_files(page: FilePage) -> str:
    if not page.files:
        return "no uploaded files"
    header = ("ID", "FILENAME", "BYTES", "STATUS", "PURPOSE", "CREATED", "EXPIRES")
    rows = [header] + [
        (
            info.id,
            info.filename or "-",
            str(info.bytes) if info.bytes is not None else "-",
            info.status or "-",
            info.purpose or "-",
            _when(info.created_at),
            _when(info.expires_at),
        )
        for info in page.files
    ]
    lines = _columns(rows)
    if page.has_more:
        lines.append(f"more: files --after {page.last_id}")
    return "\n".join(lines)


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def _show_page(page: BatchPage) -> str:
    if not page.batches:
        return "no batch jobs"
    header = ("ID", "STATUS", "DONE", "CREATED", "ENDPOINT")
    rows = [header] + [
        (
            batch.id,
            batch.status,
            f"{batch.progress_percent:.0f}%" if batch.progress_percent is not None else "-",
            _when(batch.created_at),
            batch.endpoint or "-",
        )
        for batch in page.batches
    ]
    lines = _columns(rows)
    if page.has_more:
        lines.append(f"more: list --after {page.last_id}")
    return "\n".join(lines)
