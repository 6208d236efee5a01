"""fetch_results: download a finished batch's files, join them to its input, keep the summary.

`BatchService.fetch_results` delegates here. Downloads and the joined files are written in a hidden scratch
folder inside the output folder, removed whatever happens (and, if the process was killed, by the next
fetch into that folder), so an interrupted fetch leaves nothing that looks complete; the files a user sees
(results, errors, retry) appear whole or not at all. A folder that cannot be written, or a full disk, is
one error naming the folder (`fileio.writing_into`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import anyio.to_thread

from aoai_batch.client import BatchClient
from aoai_batch.cost import Pricing
from aoai_batch.errors import InvalidInput, NotFound, NotReady, NotWritable
from aoai_batch.fileio import publish_all, remove_stale_scratch, scratch_folder, writing_into
from aoai_batch.models import Batch, FetchSummary, ProgressFn
from aoai_batch.results.join import MAX_PREVIEW, Joined, ResultFormat, join_results
from aoai_batch.results.paths import ResultPaths, plan_paths
from aoai_batch.results.source_rows import SourceLink, build_link_for
from aoai_batch.results.summary import not_run_summary, summarize
from aoai_batch.results.usage_tally import tally_usage
from aoai_batch.store import Store

FORMATS = ("jsonl", "csv")


async def fetch_results(
    client: BatchClient,
    store: Store,
    batch_id: str,
    *,
    output_dir: Path,
    format: ResultFormat = "jsonl",
    preview: int = 3,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    pricing: Pricing | None = None,
    sources_home: Path | None = None,
) -> FetchSummary:
    """Write the results, errors and retry files of a finished batch into `output_dir`; return the summary.

    With `pricing`, the summary's `cost` is priced from the usage the output lines report.
    `sources_home`: where build keeps the links of the files it built from rows (`source_rows`); a batch
    whose input is one of them gets its source rows' columns beside the answers.

    Raises NotReady for a batch still running, NotFound for an unknown batch or an input that is gone,
    InvalidInput for bad parameters or files that exist (without `overwrite`).
    """
    _check_parameters(format, preview)
    batch = (await store.save_batch(await client.get_batch(batch_id))).batch
    if not batch.terminal:
        raise NotReady(_not_ready_message(batch), batch_id=batch.id)
    if _never_ran(batch):
        summary = not_run_summary(batch, format)
    else:
        summary = await _download_and_join(
            client, store, batch, Path(output_dir), format, preview, overwrite, progress, pricing, sources_home
        )
    await store.save_results_summary(summary)
    await report(progress, 1, 1, f"Results of {batch.id}: {_counts_text(summary)}")
    return summary


async def report(progress: ProgressFn | None, done: float, total: float | None, message: str) -> None:
    if progress is not None:
        await progress(done, total, message)


def _check_parameters(format: str, preview: int) -> None:
    if format not in FORMATS:
        raise InvalidInput(f"format must be 'jsonl' or 'csv' (it was {format!r}).")
    if not 0 <= preview <= MAX_PREVIEW:
        raise InvalidInput(f"preview must be between 0 and {MAX_PREVIEW} rows (it was {preview}).")


def _never_ran(batch: Batch) -> bool:
    """A batch that failed before running anything (validation): no files, or files with nothing in them."""
    if batch.status != "failed":
        return False
    counts = batch.request_counts
    return not (batch.output_file_id or batch.error_file_id) or counts.completed + counts.failed == 0


def _not_ready_message(batch: Batch) -> str:
    done = f", {batch.progress_percent:.0f}% done" if batch.progress_percent is not None else ""
    return f"Batch {batch.id} is still {batch.status}{done}: its results are not ready until it has finished."


def _counts_text(summary: FetchSummary) -> str:
    counts = summary.counts
    return f"{counts.succeeded} succeeded, {counts.failed} failed, {counts.missing} missing"


async def _download_and_join(
    client: BatchClient,
    store: Store,
    batch: Batch,
    output_dir: Path,
    format: ResultFormat,
    preview: int,
    overwrite: bool,
    progress: ProgressFn | None,
    pricing: Pricing | None,
    sources_home: Path | None,
) -> FetchSummary:
    with writing_into(output_dir):
        paths = await anyio.to_thread.run_sync(_prepare, output_dir, batch.id, format, overwrite)
        with scratch_folder(output_dir) as work:
            output = await _download(client, batch.output_file_id, work / "output.jsonl", "output", progress)
            errors = await _download(client, batch.error_file_id, work / "errors.jsonl", "error", progress)
            input_path = await _input_file(client, store, batch, work / "input.jsonl", progress)
            link, source_note = await anyio.to_thread.run_sync(_source_link, sources_home, batch, input_path)
            await report(progress, 0, None, f"Joining the results of {batch.id} to its input")
            joined = await anyio.to_thread.run_sync(
                functools.partial(
                    join_results,
                    input_path,
                    output_path=output,
                    error_path=errors,
                    results_path=work / "results",
                    retry_path=work / "retry.jsonl",
                    format=format,
                    preview=preview,
                    overwrite=True,  # in a folder of its own: nothing there to keep
                    source=link,
                )
            )
            joined.source_note = source_note
            cost = pricing.usage_cost(await anyio.to_thread.run_sync(tally_usage, output)) if pricing else None
            kept_errors = errors if errors is not None and errors.stat().st_size else None  # Azure: 0 bytes on success
            await anyio.to_thread.run_sync(_publish_all, joined, kept_errors, paths, overwrite)
    summary = summarize(
        joined,
        batch_id=batch.id,
        batch_status=batch.status,
        format=format,
        errors_path=paths.errors if kept_errors else None,
        had_output_file=output is not None,
        batch_errors=batch.errors,
    )
    return summary.model_copy(update={"cost": cost})


def _source_link(home: Path | None, batch: Batch, input_path: Path) -> tuple[SourceLink | None, str | None]:
    """The rows the batch's input was built from (when this program built it from rows), or why they cannot be used."""
    if home is None or not batch.input_path:
        return None, None
    link = build_link_for(home, Path(batch.input_path), input_bytes=input_path.stat().st_size)
    if link is None:
        return None, None
    reason = link.stale_reason()
    return (None, reason) if reason else (link, None)


def _prepare(folder: Path, batch_id: str, format: ResultFormat, overwrite: bool) -> ResultPaths:
    _make_folder(folder)
    remove_stale_scratch(folder)
    return plan_paths(folder, batch_id, format, overwrite=overwrite)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise NotWritable(f"{folder} is not a folder; give a folder for the results.", folder=str(folder)) from exc


def _publish_all(joined: Joined, errors: Path | None, paths: ResultPaths, overwrite: bool) -> None:
    """Give the finished files their names, all or none (without `overwrite`, the names were free)."""
    publish_all(
        [(joined.results_path, paths.results), (joined.retry_path, paths.retry), (errors, paths.errors)],
        overwrite=overwrite,
    )
    joined.results_path = paths.results
    joined.retry_path = paths.retry if joined.retry_path is not None else None


async def _download(
    client: BatchClient, file_id: str | None, dest: Path, what: str, progress: ProgressFn | None
) -> Path | None:
    if not file_id:
        return None
    await report(progress, 0, None, f"Downloading the {what} file {file_id}")
    await client.download_file(file_id, dest, progress=progress)
    return dest


async def _input_file(client: BatchClient, store: Store, batch: Batch, dest: Path, progress: ProgressFn | None) -> Path:
    """The batch's input: the local file this server uploaded if it is unchanged, else the service's copy."""
    local = Path(batch.input_path) if batch.input_path else None
    local_size = await anyio.to_thread.run_sync(_size, local) if local else None
    if local is not None and local_size is not None:
        uploaded = await store.get_file(batch.input_file_id) if batch.input_file_id else None
        if uploaded is None or uploaded.file.bytes in (None, local_size):
            return local
    if not batch.input_file_id:
        raise NotFound(f"Batch {batch.id} names no input file and no local copy is known: nothing to join to.")
    try:
        await _download(client, batch.input_file_id, dest, "input", progress)
    except NotFound as exc:
        raise NotFound(
            f"The input file {batch.input_file_id} of batch {batch.id} is gone from the service and no local "
            "copy is known, so the answers cannot be lined up with their questions."
        ) from exc
    return dest


def _size(path: Path | None) -> int | None:
    """The size of a regular file, or None when there is none at `path`."""
    try:
        return path.stat().st_size if path is not None and path.is_file() else None
    except OSError:
        return None
