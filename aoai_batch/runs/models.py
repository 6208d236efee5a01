"""The shapes of a run (SPEC §9): one job split into shards, what tools, resources and the CLI show of it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from aoai_batch.models import Backend, BatchStatus, EstimatedCost, RequestCounts, ResultRow, ResultsTally

RunStatus = Literal["running", "cancelling", "cancelled", "completed", "failed"]
"""`running` until every shard is terminal and its results are in; `completed` then (some requests may have
failed: the counts say); `failed` when a shard could not be submitted for a reason retrying cannot mend;
`cancelling` until the cancelled shards' batches are terminal, then `cancelled`."""
TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"cancelled", "completed", "failed"})

ShardKind = Literal["input", "retry"]
"""`input`: a range of the run's input file, in order; `retry`: requests resubmitted after a retryable failure."""

ShardState = Literal[
    "queued", "uploading", "uploaded", "creating", "submitted", "collecting", "done", "failed", "cancelled"
]
"""Where a shard is. `queued`: waiting for quota (or for `next_try_at` after a quota error); `uploading` ->
`uploaded` (its file id kept); `creating`: a create was sent under the shard attempt's idempotency key, the
batch id not yet written (a restart looks the key up before creating again); `submitted`: its batch is not
terminal (its tokens count against its deployment's enqueued quota); `collecting`: its batch is terminal and
its results are being fetched; `done`: its results are in the run's folder; `failed`: it cannot be submitted
(a non-retryable error at create); `cancelled`: the run was cancelled before it was submitted."""
ACTIVE_SHARD_STATES: frozenset[str] = frozenset({"creating", "submitted"})
"""The states whose estimated tokens the ledger counts against the deployment."""

LimitSource = Literal["settings", "pool", "learned"]


class ShardView(BaseModel):
    """One shard of a run, as shown to users."""

    index: int = Field(description="0-based, in plan order; retry shards come after the input shards.")
    kind: ShardKind
    requests: int
    estimated_tokens: int
    deployment: str | None = Field(None, description="The deployment it was (or is being) submitted to.")
    attempt: int = Field(0, description="How many times it was submitted (quota refusals included).")
    state: ShardState
    batch_id: str | None = None
    batch_status: BatchStatus | None = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    next_try_at: datetime | None = Field(None, description="When a shard refused for quota is tried again.")
    error: str | None = Field(None, description="The last error's code and message.")


class DeploymentLoad(BaseModel):
    """A deployment's enqueued tokens in flight against its limit (the scheduler's ledger)."""

    deployment: str
    in_flight_tokens: int = Field(description="Estimated input tokens of this deployment's shards not yet terminal.")
    limit: int | None = Field(None, description="Its enqueued-token limit; None when not known.")
    limit_source: LimitSource | None = None
    shards_in_flight: int = 0


class Run(BaseModel):
    """A run: one job of any size, split into shards over one or more deployments."""

    id: str = Field(description="`run_...`")
    name: str | None = None
    status: RunStatus
    terminal: bool
    created_at: datetime
    updated_at: datetime
    endpoint: str
    deployments: list[str] = Field(description="In order of preference.")
    retries: int = Field(description="How many times a request failed for a retryable cause is resubmitted.")
    idempotency_key: str | None = None
    input_path: str = Field(description="The run's whole input file (a batch file of any size), in its folder.")
    source_path: str | None = Field(None, description="The CSV/JSONL/JSON rows it was built from, if any.")
    requests: int
    estimated_input_tokens: int
    estimated_cost: EstimatedCost | None = Field(
        None, description="The whole run at its first deployment's model's price, made at the start."
    )
    request_counts: RequestCounts = Field(
        default_factory=RequestCounts, description="Over every shard's latest attempt: total, completed, failed."
    )
    progress_percent: float = 0.0
    shard_counts: dict[str, int] = Field(default_factory=dict, description="Shards by state.")
    shards: list[ShardView] = Field(default_factory=list, description="The first shards; see shard_counts.")
    ledger: list[DeploymentLoad] = Field(default_factory=list)
    waiting_for: str | None = Field(
        None,
        description="What it waits for, e.g. '3 shards queued: gpt-4o-mini has 0.9M of 1M enqueued tokens in flight'.",
    )
    results_path: str | None = Field(None, description="The merged results file, once fetched.")
    errors: list[str] = Field(default_factory=list, description="Why shards failed, when the run failed.")
    backend: Backend


class RunPage(BaseModel):
    runs: list[Run]
    has_more: bool
    last_id: str | None = None


class RunResultRow(ResultRow):
    """One row of a run's results file: the request's latest attempt (and its source row's columns)."""

    batch_id: str | None = Field(None, description="The batch that answered it (its latest attempt's).")
    attempts: int = Field(0, description="How many batches it was sent in.")
    source: dict[str, object] | None = Field(None, description="The source row's own columns, when built from rows.")


class RunResultsSummary(ResultsTally):
    """fetch_run_results: one results file over every shard and retry, one row per input request in input order
    (also served as batch://runs/{run_id}/results once fetched)."""

    run_id: str
    run_status: RunStatus
    preview: list[RunResultRow] = Field(default_factory=list, description="A few rows; content is data, truncated.")
    shards: int = 0
    retried: int = Field(0, description="Requests answered by a retry shard.")
