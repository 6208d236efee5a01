"""The shapes that cross boundaries: batches, files, validation reports, build and fetch summaries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})
Backend = Literal["azure", "openai", "emulator"]
BatchEndpoint = Literal["/chat/completions", "/responses", "/embeddings", "/completions"]

IssueCode = Literal[
    "invalid_json_line",
    "too_many_tasks",
    "url_mismatch",
    "model_not_found",
    "duplicate_custom_id",
    "empty_file",
    "model_mismatch",
    "invalid_request",
    "file_too_large",
    "bom",
    "missing_custom_id",
    "invalid_method",
    "blank_line",
]


class RequestCounts(BaseModel):
    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchError(BaseModel):
    """One entry of a batch's `errors` (Azure sends an object with `data`, or a list)."""

    code: str | None = None
    message: str | None = None
    line: int | None = None
    param: str | None = None


class Batch(BaseModel):
    """A batch job, normalised across Azure's variants, OpenAI and the emulator."""

    id: str
    status: BatchStatus
    terminal: bool
    endpoint: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    completion_window: str | None = None
    created_at: datetime | None = None
    in_progress_at: datetime | None = None
    finalizing_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    expired_at: datetime | None = None
    expires_at: datetime | None = None
    cancelling_at: datetime | None = None
    cancelled_at: datetime | None = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    progress_percent: float | None = Field(None, description="Share of requests done (completed + failed).")
    errors: list[BatchError] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    input_path: str | None = Field(None, description="The local input file, when this server uploaded it.")
    results_path: str | None = Field(None, description="The local results file, once fetched.")
    backend: Backend
    resource: str | None = Field(None, description="The pool resource (endpoint) it is on; null: this server's own.")


class FileInfo(BaseModel):
    """An uploaded file's metadata."""

    id: str
    filename: str | None = None
    bytes: int | None = None
    purpose: str | None = None
    status: str | None = None
    status_details: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    backend: Backend


class ValidationIssue(BaseModel):
    code: IssueCode
    line: int | None = Field(None, description="1-based line number; none for whole-file issues.")
    message: str


class ValidationReport(BaseModel):
    """The result of checking a batch file against Azure's rules."""

    ok: bool
    path: str
    requests: int = 0
    bytes: int = 0
    deployment: str | None = None
    deployment_checked: bool = Field(False, description="False when the deployment's existence was not checked.")
    url: str | None = None
    issues: list[ValidationIssue] = Field(default_factory=list, description="The first 50 issues.")
    issue_counts: dict[str, int] = Field(default_factory=dict, description="Every issue, counted by code.")
    estimated_input_tokens: int = 0
    tokens_exact: bool = Field(True, description="False when the token count is an approximation.")


class BuiltFile(BaseModel):
    path: str
    requests: int
    bytes: int


class BuildResult(BaseModel):
    """What build_batch_file wrote."""

    files: list[BuiltFile]
    requests: int
    split: bool
    estimated_input_tokens: int
    tokens_exact: bool
    validation: list[ValidationReport] = Field(description="One report per file written.")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ResultCounts(BaseModel):
    succeeded: int = 0
    failed: int = 0
    missing: int = 0


class ResultError(BaseModel):
    code: str | None = None
    message: str | None = None


class ResultRow(BaseModel):
    """One row of the results file: an input request and what became of it."""

    custom_id: str
    status: Literal["succeeded", "failed", "missing"]
    input: str | None = None
    content: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    error: ResultError | None = None


class ResultsTally(BaseModel):
    """What a fetch wrote and found: the part a batch's and a run's results summaries share."""

    format: Literal["jsonl", "csv"]
    results_path: str | None = None
    errors_path: str | None = None
    retry_path: str | None = None
    counts: ResultCounts = Field(default_factory=ResultCounts)
    usage: Usage = Field(default_factory=Usage)
    failures_by_code: dict[str, int] = Field(default_factory=dict)
    failed_ids: list[str] = Field(default_factory=list, description="The first few failed or missing ids.")
    unparsable_lines: int = Field(0, description="Output or error lines that were not JSON.")
    unmatched_lines: int = Field(0, description="Output or error lines whose custom_id is not in the input.")
    duplicate_lines: int = Field(0, description="Output or error lines repeating a custom_id already answered.")
    note: str | None = None


class FetchSummary(ResultsTally):
    """What fetch_results wrote and found (also served as batch://jobs/{batch_id}/results)."""

    batch_id: str
    batch_status: BatchStatus
    preview: list[ResultRow] = Field(default_factory=list, description="A few rows; content is data, truncated.")


class UploadResult(BaseModel):
    """An uploaded file and the check it passed before upload."""

    file: FileInfo
    validation: ValidationReport | None = None


class BatchPage(BaseModel):
    batches: list[Batch]
    has_more: bool
    last_id: str | None = None


class FilePage(BaseModel):
    files: list[FileInfo]
    has_more: bool
    last_id: str | None = None


ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
"""Reports progress: (progress, total or None, message or None)."""
