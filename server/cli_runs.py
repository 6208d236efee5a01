"""`run start|status|list|cancel|results` and `worker`: jobs of any size, split into batches.

A run moves only while something advances it: the MCP server in the background, `worker` (every active run,
in the foreground, until none is left; `--forever` for a service or cron), or `run status --follow`/`--wait`.
Exit codes: 0 done (`status --follow`: the run completed), 1 an expected failure or a run that did not
complete, 2 usage. `--json` prints the result model's JSON; otherwise a short readable form.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel

from aoai_batch.cost import describe_estimate
from aoai_batch.errors import BatchToolError, NotFound, NotReady, with_advice
from aoai_batch.limits import MAX_WAIT_SECONDS
from aoai_batch.runs.models import Run, RunPage, RunResultsSummary
from aoai_batch.runs.service import MAX_RETRIES, RunService
from aoai_batch.runs.source import is_batch_file
from aoai_batch.service import TRANSIENT_ERRORS, BatchService
from aoai_batch.settings import Settings
from server.cli_args import FAILED, OK, OUTPUT_RULE, float_in, int_in
from server.cli_errors import PROG, report_error
from server.cli_files import _json_object, _read_requests
from server.cli_results import describe_cost, plain
from server.cli_support import (
    INTERRUPTED,
    ExitCodeOf,
    ProgressBar,
    add_service_command,
    load_settings,
    progress_bar_for,
    progress_for,
)

RunAction = Callable[[RunService, argparse.Namespace], Awaitable[BaseModel]]
SHOWN_SHARDS = 10


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    if "run" in subparsers.choices or "worker" in subparsers.choices:
        return  # `run` and `worker` share this module: registered once
    run = subparsers.add_parser("run", help="runs: jobs of any size", description=__doc__.split("\n")[0])
    commands = run.add_subparsers(
        dest="run_command", metavar="COMMAND", required=True, help="start, status, list, cancel or results"
    )

    start = _command(commands, "start", "Start a run: one job of any size, split into batches.", _start, show_run)
    start.add_argument(
        "--deployment",
        action="append",
        dest="deployments",
        required=True,
        metavar="NAME",
        help="a Global-Batch deployment the run may use (repeatable, in order of preference)",
    )
    source = start.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", action="append", dest="prompts", metavar="TEXT", help="a prompt (repeatable)")
    source.add_argument("--requests", type=Path, metavar="FILE", help="a JSON array of request objects")
    source.add_argument(
        "--source",
        type=Path,
        metavar="FILE",
        help="a CSV, JSONL or JSON-array file of rows, or a batch JSONL file of any size "
        "(told apart by its first line: custom_id, method, url and body)",
    )
    start.add_argument("--template", help="the prompt with {column} placeholders, e.g. 'Summarize: {text}'")
    start.add_argument("--system-prompt", help="a system prompt for every request")
    start.add_argument("--id-field", help="the column that holds each row's custom_id (default: generated)")
    start.add_argument("--image-field", help="the column with an image path or URL")
    start.add_argument(
        "--endpoint", default="/chat/completions", choices=["/chat/completions", "/responses"], help="the API called"
    )
    start.add_argument("--body", type=_json_object, metavar="JSON", help="fields for every request body")
    start.add_argument("--name", help="a label for the run")
    start.add_argument(
        "--retries",
        type=int_in(0, MAX_RETRIES),
        default=1,
        metavar=f"0-{MAX_RETRIES}",
        help="times a request that failed for a retryable cause is resubmitted",
    )
    start.add_argument("--idempotency-key", help="the same key never starts a second run")
    start.add_argument(
        "--max-cost",
        type=float_in(0),
        metavar="AMOUNT",
        help="refuse to start when the run's estimated cost (in the price book's currency, USD) is above AMOUNT",
    )

    status = _command(commands, "status", "Show a run's status.", _status, show_run, outcome=_status_outcome)
    status.add_argument("run_id", help="the run's id (from run start or run list)")
    waiting = status.add_mutually_exclusive_group()
    waiting.add_argument(
        "--wait",
        type=float_in(0, MAX_WAIT_SECONDS),
        default=0,
        metavar="SECONDS",
        help=f"advance the run for up to this many seconds (0-{MAX_WAIT_SECONDS}) until it changes",
    )
    waiting.add_argument(
        "--follow",
        action="store_true",
        help="advance the run until it has ended, with a progress bar; exit 0 if it completed, 1 if not",
    )

    listing = _command(commands, "list", "List runs, newest first.", _list, show_page)
    listing.add_argument("--limit", type=int_in(1, 100), default=20, metavar="1-100", help="how many to list")
    listing.add_argument("--after", metavar="RUN_ID", help="the last id of the previous page")

    cancel = _command(commands, "cancel", "Cancel a run; finished work is kept.", _cancel, show_run)
    cancel.add_argument("run_id", help="the run's id")

    results = _command(
        commands, "results", "Merge a finished run's results into one file, in input order.", _results, show_summary
    )
    results.description = f"{results.description} {OUTPUT_RULE}"
    results.add_argument("run_id", help="the run's id")
    results.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="the results file's format")
    results.add_argument("--output-dir", type=Path, metavar="DIR", help="the folder to write into (default: .)")
    results.add_argument("--preview", type=int_in(0, 20), default=3, metavar="0-20", help="result rows to show")
    results.add_argument("--overwrite", action="store_true", help="replace the files of an earlier fetch")

    worker = subparsers.add_parser(
        "worker",
        help="advance every active run in the foreground until none is left",
        description="Advance every active run in the foreground until none is left (for scripts and cron).",
    )
    worker.add_argument("--forever", action="store_true", help="keep serving: pick up new runs as they start")
    worker.set_defaults(run=run_worker, json=False)


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    action: RunAction,
    show: Callable[[Any], str],
    outcome: ExitCodeOf | None = None,
) -> argparse.ArgumentParser:
    return add_service_command(commands, name, help_text, action, show, outcome, opener=_open_and_call)


async def _open_and_call(settings: Settings, action: RunAction, args: argparse.Namespace) -> BaseModel:
    async with BatchService.open(settings) as service, RunService.open(settings, service) as runs:
        with _in_cli_words(getattr(args, "run_id", None)):
            return await action(runs, args)


@contextlib.contextmanager
def _in_cli_words(run_id: str | None) -> Iterator[None]:
    """A run not found or not finished, said with this command line's next step (the core's names tools)."""
    try:
        yield
    except NotFound as exc:
        if run_id is None or run_id not in str(exc):
            raise
        raise NotFound(f"There is no run {run_id} here. `{PROG} run list` shows the runs.") from exc
    except NotReady as exc:
        if run_id is None:
            raise
        step = f"`{PROG} run status {run_id} --follow` advances it until it has ended."
        raise NotReady(with_advice(exc, step)) from exc


async def _start(runs: RunService, args: argparse.Namespace) -> BaseModel:
    source = args.source.expanduser().resolve() if args.source else None
    batch_path = source if source is not None and source.is_file() and is_batch_file(source) else None
    images_from = source.parent if source else Path.cwd()
    return await runs.start_run(
        deployments=args.deployments,
        prompts=args.prompts,
        requests=_read_requests(args.requests) if args.requests is not None else None,
        source_path=None if batch_path else source,
        batch_path=batch_path,
        template=args.template,
        system_prompt=args.system_prompt,
        id_field=args.id_field,
        image_field=args.image_field,
        endpoint=args.endpoint,
        body=args.body,
        name=args.name,
        retries=args.retries,
        idempotency_key=args.idempotency_key,
        resolve_image=lambda cell: images_from / cell,
        max_cost=args.max_cost,
    )


async def _status(runs: RunService, args: argparse.Namespace) -> BaseModel:
    if args.follow:
        return await follow(runs, args.run_id, progress_bar_for(args))
    return await runs.get_run(args.run_id, wait_seconds=args.wait, progress=progress_for(args))


async def follow(runs: RunService, run_id: str, bar: ProgressBar | None) -> Run:
    """Advance the run until it has ended; a failed step (the service unreachable for now) is retried."""
    run = await runs.get_run(run_id)
    try:
        while not run.terminal:
            await _show_progress(bar, run)
            with contextlib.suppress(*TRANSIENT_ERRORS):
                run = await runs.get_run(run_id, wait_seconds=MAX_WAIT_SECONDS)
        await _show_progress(bar, run)
    finally:
        if bar is not None:
            bar.finish()
    return run


async def _show_progress(bar: ProgressBar | None, run: Run) -> None:
    if bar is not None:
        await bar(_done(run), run.requests or None, _progress_line(run))


def _done(run: Run) -> int:
    return run.request_counts.completed + run.request_counts.failed


def _progress_line(run: Run) -> str:
    line = f"{run.id} {run.status} ({_done(run)}/{run.requests} requests)"
    return f"{line}: {run.waiting_for}" if run.waiting_for else line


def _status_outcome(run: Run, args: argparse.Namespace) -> int:
    """With --follow the exit code says how the run ended: 0 completed, 1 failed or cancelled."""
    return FAILED if args.follow and run.status != "completed" else OK


async def _list(runs: RunService, args: argparse.Namespace) -> BaseModel:
    return await runs.list_runs(limit=args.limit, after=args.after)


async def _cancel(runs: RunService, args: argparse.Namespace) -> BaseModel:
    return await runs.cancel_run(args.run_id)


async def _results(runs: RunService, args: argparse.Namespace) -> BaseModel:
    output_dir = (args.output_dir or Path()).expanduser().resolve()
    return await runs.fetch_run_results(
        args.run_id,
        output_dir=output_dir,
        format=args.format,
        preview=args.preview,
        overwrite=args.overwrite,
        progress=progress_for(args),
    )


def run_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings is None:
        return FAILED
    try:
        anyio.run(_work, settings, args.forever)
    except BatchToolError as exc:
        report_error(exc)
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    return OK


async def _work(settings: Settings, forever: bool) -> None:
    async with BatchService.open(settings) as service, RunService.open(settings, service) as runs:
        active = await runs.active_runs()
        print(f"worker: {len(active)} active run(s){'; waiting for new ones' if forever else ''}", file=sys.stderr)
        await runs.work(forever=forever, on_change=_print_changes)
        print("worker: no active run is left", file=sys.stderr)


async def _print_changes(changed: list[Run]) -> None:
    for run in changed:
        print(_progress_line(run), flush=True)


# readable output


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def show_run(run: Run) -> str:
    counts = run.request_counts
    percent = f"{run.progress_percent:.0f}%"
    rows = [
        ("id", run.id + (f" ({run.name})" if run.name else "")),
        ("status", run.status + (" (finished)" if run.terminal else "")),
        ("progress", f"{percent} ({counts.completed} done, {counts.failed} failed of {counts.total})"),
        ("shards", ", ".join(f"{n} {state}" for state, n in sorted(run.shard_counts.items())) or "-"),
        ("deployments", ", ".join(run.deployments)),
        ("tokens", f"~{run.estimated_input_tokens} input tokens (estimated)"),
        *([("cost", describe_estimate(run.estimated_cost))] if run.estimated_cost else []),
        ("created", _when(run.created_at)),
        ("input", run.input_path),
    ]
    rows += [("source", run.source_path)] if run.source_path else []
    rows += [("waiting for", run.waiting_for)] if run.waiting_for else []
    rows += [("results", run.results_path)] if run.results_path else []
    for load in run.ledger:
        limit = f"{load.limit}" if load.limit is not None else "unknown"
        rows.append(("enqueued", f"{load.deployment}: {load.in_flight_tokens} of {limit} tokens in flight"))
    rows += [("error", error) for error in run.errors]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    for shard in run.shards[:SHOWN_SHARDS]:
        where = shard.batch_id or "-"
        lines.append(
            f"  shard {shard.index} {shard.kind} {shard.requests} req {shard.state} on {shard.deployment or '-'} "
            f"({where})" + (f": {plain(shard.error)}" if shard.error else "")
        )
    hidden = sum(run.shard_counts.values()) - min(len(run.shards), SHOWN_SHARDS)
    if hidden > 0:
        lines.append(f"  ... {hidden} more shards (--json lists the first {len(run.shards)})")
    if not run.terminal:
        lines.append(f"advance it: `{PROG} worker` or `{PROG} run status {run.id} --follow`")
    return "\n".join(lines)


def show_page(page: RunPage) -> str:
    if not page.runs:
        return "no runs"
    rows = [("ID", "STATUS", "DONE", "REQUESTS", "CREATED", "NAME")] + [
        (run.id, run.status, f"{run.progress_percent:.0f}%", str(run.requests), _when(run.created_at), run.name or "-")
        for run in page.runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if page.has_more:
        lines.append(f"more: run list --after {page.last_id}")
    return "\n".join(lines)


def show_summary(summary: RunResultsSummary) -> str:
    counts, usage = summary.counts, summary.usage
    lines = [
        f"run        {summary.run_id} ({summary.run_status}, {summary.shards} shards, {summary.retried} retried)",
        f"requests   {counts.succeeded} succeeded, {counts.failed} failed, {counts.missing} missing",
        f"tokens     {usage.prompt_tokens} prompt + {usage.completion_tokens} completion = {usage.total_tokens}",
    ]
    paths = (("results", summary.results_path), ("errors", summary.errors_path), ("retry", summary.retry_path))
    for label, path in paths:
        if path:
            lines.append(f"{label:<10} {path}")
    if summary.cost is not None:
        lines.append(f"cost       {describe_cost(summary.cost)}")
    if summary.failures_by_code:
        lines.append("failures   " + ", ".join(f"{code} x{n}" for code, n in summary.failures_by_code.items()))
    for row in summary.preview:
        answer = row.content if row.status == "succeeded" else (row.error.code if row.error else None)
        lines.append(f"  {plain(row.custom_id)} [{row.status}] {plain(row.input)} -> {plain(answer)}")
    return "\n".join(lines)
