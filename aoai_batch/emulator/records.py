"""What the emulator stores about each file and batch (times are epoch seconds of its clock)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from aoai_batch.models import BatchStatus

FileKind = Literal["upload", "output", "error"]
ACTIVE_STATUSES: frozenset[str] = frozenset({"validating", "in_progress", "finalizing", "cancelling"})


class EmulatedFile(BaseModel):
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: float
    ready_at: float = Field(description="When the status turns from pending to processed.")
    expires_at: float | None = None
    kind: FileKind = "upload"
    # An input's enqueued-token estimate and the deployment its lines name, worked out at its first batch (quota.py)
    tokens: int | None = None
    deployment: str | None = None


class EmulatedBatch(BaseModel):
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None
    output_expires_seconds: int | None = Field(None, description="`output_expires_after`: the output files' lifetime.")
    status: BatchStatus = "validating"
    created_at: float
    expires_at: float
    in_progress_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = Field(None, description="The deployment the input names.")
    held_tokens: int = Field(0, description="The input's tokens counted against its deployment's quota while active.")
    quota_error: dict[str, Any] | None = Field(
        None, description="The `token_limit_exceeded` error it fails validation with (quota mode `validate`)."
    )
    processing_seconds: float = Field(0.0, description="How long in_progress lasts on the clock (echo's pace).")
    done_at: float | None = Field(None, description="When an engine's worker answered the last request.")
    # Where processing stands: requests done, the byte offset of the next input line, and the sizes of
    # the work files at that point (a restart truncates them back to these).
    cursor: int = 0
    input_offset: int = 0
    output_bytes: int = 0
    error_bytes: int = 0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES
