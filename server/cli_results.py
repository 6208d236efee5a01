"""`results BATCH_ID`: fetch a finished batch's results, joined to its inputs (the fetch_results tool's mirror).

Exit codes: 0 fetched (even if some requests failed: the summary says so), 1 an expected failure
(not finished, unknown batch, files in the way; the message goes to stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import unicodedata
from pathlib import Path

from aoai_batch.models import Cost, FetchSummary, ResultRow
from aoai_batch.service import BatchService
from aoai_batch.text import truncate
from server.cli_args import OUTPUT_RULE, int_in
from server.cli_support import add_service_command, progress_for

SHOWN_CHARS = 100


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    help_text = "Fetch a finished batch's results, joined to its inputs, with a retry file of what did not succeed."
    parser = add_service_command(subparsers, "results", help_text, _fetch, show)
    parser.description = f"{help_text} {OUTPUT_RULE}"
    parser.add_argument("batch_id", help="the batch's id (from create or list)")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="the results file's format")
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="the folder to write into (default: the current folder; created if missing)",
    )
    parser.add_argument("--preview", type=int_in(0, 20), default=3, metavar="0-20", help="result rows to show")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier fetch")


async def _fetch(service: BatchService, args: argparse.Namespace) -> FetchSummary:
    output_dir = (args.output_dir or Path()).expanduser().resolve()
    return await service.fetch_results(
        args.batch_id,
        output_dir=output_dir,
        format=args.format,
        preview=args.preview,
        overwrite=args.overwrite,
        progress=progress_for(args),
    )


def show(summary: FetchSummary) -> str:
    counts, usage = summary.counts, summary.usage
    lines = [
        f"batch      {summary.batch_id} ({summary.batch_status})",
        f"requests   {counts.succeeded} succeeded, {counts.failed} failed, {counts.missing} missing",
        f"tokens     {usage.prompt_tokens} prompt + {usage.completion_tokens} completion = {usage.total_tokens}",
    ]
    for label, path in (
        ("results", summary.results_path),
        ("errors", summary.errors_path),
        ("retry", summary.retry_path),
    ):
        if path:
            lines.append(f"{label:<10} {path}")
    if summary.cost is not None:
        lines.append(f"cost       {describe_cost(summary.cost)}")
    if summary.failures_by_code:
        lines.append("failures   " + ", ".join(f"{code} x{n}" for code, n in summary.failures_by_code.items()))
    if summary.failed_ids:
        lines.append("not done   " + ", ".join(summary.failed_ids))
    if summary.note:
        lines.append(f"note       {summary.note}")
    lines.extend(_preview_line(row) for row in summary.preview)
    return "\n".join(lines)


def describe_cost(cost: Cost) -> str:
    """`USD 0.0123 (input 0.001, cached 0, output 0.0113; gpt-4o-mini-2024-07-18 prices of 2026-12-02)`."""
    if cost.total is None:
        return f"unknown ({cost.reason})"
    parts = f"input {cost.input:g}, cached {cost.cached_input:g}, output {cost.output:g}"
    return f"{cost.currency} {cost.total:g} ({parts}; {', '.join(cost.models) or 'no'} prices of {cost.price_date})"


def _preview_line(row: ResultRow) -> str:
    answer = row.content if row.status == "succeeded" else (row.error.code if row.error else None)
    return f"  {plain(row.custom_id)} [{row.status}] {plain(row.input)} -> {plain(answer)}"


def plain(text: str | None) -> str:
    """One short line of model or user text, with control characters (newlines, terminal escapes) turned into spaces."""
    if text is None:
        return "-"
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return truncate(cleaned, SHOWN_CHARS)
