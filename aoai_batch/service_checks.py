"""What `BatchService` refuses before any request: a path or batch id for a file id, an endpoint or metadata
Azure would refuse, and a batch file with issues (as the error that names them)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import get_args

from aoai_batch.client import IDEMPOTENCY_METADATA_KEY
from aoai_batch.endpoints import bare_endpoint
from aoai_batch.errors import InvalidBatchFile, InvalidInput, NotAFileId, UnknownDeployment
from aoai_batch.limits import MAX_METADATA_KEY_CHARS, MAX_METADATA_VALUE_CHARS, MAX_USER_METADATA_PAIRS
from aoai_batch.models import BatchEndpoint, ValidationIssue, ValidationReport

ENDPOINTS: frozenset[str] = frozenset(get_args(BatchEndpoint))
SHOWN_ISSUES = 5
LOCAL_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".txt")
FILE_ID = re.compile(r"file-[A-Za-z0-9_-]+")


def check_input_file_id(value: str, folders: Iterable[Path] = ()) -> None:
    """Raise NotAFileId for a batch id, or for a path (a file name, or a file in one of `folders`)."""
    text = value.strip()
    if text.startswith("batch_"):
        raise NotAFileId(f"{text} is a batch id, not the id of an uploaded file.", value=text, given="batch")
    if FILE_ID.fullmatch(text):
        return  # the shape of every backend's file ids, even if a file of that name happens to exist here
    named_like_a_path = text.lower().endswith(LOCAL_FILE_SUFFIXES) or any(sep in text for sep in ("/", "\\", os.sep))
    if text and (named_like_a_path or _exists_in(text, folders)):
        raise NotAFileId(f"{text} is a local file path, not the id of an uploaded file.", value=text, given="path")


def _exists_in(name: str, folders: Iterable[Path]) -> bool:
    try:
        return any((folder / Path(name).expanduser()).exists() for folder in folders)
    except (OSError, ValueError):  # a name no file system accepts (too long, a NUL byte) is no path
        return False


def check_endpoint(endpoint: str) -> str:
    bare = bare_endpoint("/" + endpoint.strip().lstrip("/"))
    if bare not in ENDPOINTS:
        raise InvalidInput(f"The endpoint must be one of {sorted(ENDPOINTS)} (it was {endpoint!r}).")
    return bare


def check_metadata(metadata: Mapping[str, str] | None) -> None:
    if not metadata:
        return
    if len(metadata) > MAX_USER_METADATA_PAIRS:
        kept = MAX_USER_METADATA_PAIRS
        raise InvalidInput(f"Metadata takes at most {kept} pairs (one is kept for the idempotency key).")
    if IDEMPOTENCY_METADATA_KEY in metadata:
        raise InvalidInput(f"The metadata key {IDEMPOTENCY_METADATA_KEY!r} is reserved for the idempotency key.")
    for key, value in metadata.items():
        if not _metadata_pair(key, value):
            raise InvalidInput(
                f"Metadata keys must be 1 to {MAX_METADATA_KEY_CHARS} characters and values strings of up to "
                f"{MAX_METADATA_VALUE_CHARS} characters."
            )


def _metadata_pair(key: object, value: object) -> bool:
    return (
        isinstance(key, str)
        and isinstance(value, str)
        and 0 < len(key) <= MAX_METADATA_KEY_CHARS
        and len(value) <= MAX_METADATA_VALUE_CHARS
    )


def invalid_file_error(path: Path, report: ValidationReport, known: Sequence[str] | None) -> InvalidInput:
    """UnknownDeployment (naming the deployments there are) when the file's deployment does not exist."""
    message = _invalid_file_message(path, report.issue_counts, report.issues)
    name = report.deployment
    if known is None or name is None or name in known:
        return InvalidBatchFile(message, path=path)
    names = ", ".join(sorted(known)) or "none"
    head = f"{path} uses deployment {name!r}, which does not exist (the deployments are {names}); nothing was uploaded."
    only_that = set(report.issue_counts) == {"model_not_found"}
    return UnknownDeployment(name, sorted(known), message=head if only_that else f"{head} Also: {message}")


def _invalid_file_message(path: Path, counts: Mapping[str, int], issues: list[ValidationIssue]) -> str:
    total = sum(counts.values())
    shown = "; ".join(
        f"line {issue.line}: {issue.code}" if issue.line else issue.code for issue in issues[:SHOWN_ISSUES]
    )
    more = f" and {total - SHOWN_ISSUES} more" if total > SHOWN_ISSUES else ""
    return f"{path} is not a valid batch file ({shown}{more}); nothing was uploaded."
