"""The `FetchSummary`: where the files went, what the counts mean, and a sentence for each special case."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from aoai_batch.models import Batch, BatchError, BatchStatus, FetchSummary, ResultCounts
from aoai_batch.results.join import PREVIEW_CHARS, Joined, ResultFormat
from aoai_batch.text import truncate


def summarize(
    joined: Joined,
    *,
    batch_id: str,
    batch_status: BatchStatus,
    format: ResultFormat,
    errors_path: Path | None,
    had_output_file: bool,
    batch_errors: list[BatchError] | None = None,
) -> FetchSummary:
    return FetchSummary(
        batch_id=batch_id,
        batch_status=batch_status,
        format=format,
        results_path=str(joined.results_path),
        errors_path=str(errors_path) if errors_path else None,
        retry_path=str(joined.retry_path) if joined.retry_path else None,
        counts=joined.counts,
        usage=joined.usage,
        failures_by_code=joined.failures_by_code,
        preview=joined.preview,
        failed_ids=joined.failed_ids,
        unparsable_lines=joined.unparsable_lines,
        unmatched_lines=joined.unmatched_lines,
        duplicate_lines=joined.duplicate_lines,
        note=note_for(joined, batch_status, had_output_file=had_output_file, batch_errors=batch_errors or []),
    )


def not_run_summary(batch: Batch, format: ResultFormat) -> FetchSummary:
    """The summary of a batch that failed before any request ran (validation): nothing to join, say why."""
    codes = Counter(error.code or "unknown_error" for error in batch.errors)
    return FetchSummary(
        batch_id=batch.id,
        batch_status=batch.status,
        format=format,
        counts=ResultCounts(missing=batch.request_counts.total),
        failures_by_code=dict(codes.most_common()),
        note=(
            f"The batch failed validation{_describe(batch.errors)}, so no request ran and there are no results. "
            "Fix the input file (validating it lists every issue), upload it again and create a new batch."
        ),
    )


def note_for(
    joined: Joined, batch_status: BatchStatus, *, had_output_file: bool, batch_errors: list[BatchError]
) -> str | None:
    """A sentence for each special case, so a partial result is never mistaken for a whole one."""
    notes: list[str] = []
    counts = joined.counts
    if batch_status in ("cancelled", "expired"):
        notes.append(
            f"The batch was {batch_status} before it finished: {_requests(counts.missing)} did not run (missing)."
        )
    elif batch_status == "failed":
        notes.append(f"The batch failed{_describe(batch_errors)}.")
    if not had_output_file and joined.requests:
        notes.append("The batch has no output file: no request succeeded.")
    if joined.unparsable_lines or joined.unmatched_lines or joined.duplicate_lines:
        notes.append(
            f"Output and error lines skipped: {joined.unparsable_lines} not valid result lines, "
            f"{joined.unmatched_lines} with a custom_id not in the input, {joined.duplicate_lines} repeated."
        )
    if joined.skipped_input_lines:
        notes.append(f"{joined.skipped_input_lines} input lines were not requests (no JSON object with a custom_id).")
    if joined.source_note:
        notes.append(joined.source_note)
    if joined.retry_path is not None:
        notes.append(f"Upload {joined.retry_path.name} to run {_requests(counts.failed + counts.missing)} again.")
    return " ".join(notes) or None


def _describe(errors: list[BatchError]) -> str:
    if not errors:
        return ""
    shown = "; ".join(f"{e.code or 'error'}: {truncate(e.message, PREVIEW_CHARS) or ''}".strip() for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f" ({shown}{more})"


def _requests(n: int) -> str:
    return f"{n} request" if n == 1 else f"{n} requests"
