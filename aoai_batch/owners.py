"""Whose jobs a call may see and change (SPEC §10): the refusals, keys and listings `BatchService` and
`RunService` share, all on the one rule `identity.may_see`.

A job that is not the viewer's is refused with the NotFound of a job that does not exist, made by the
same function for both (and, for a viewer who sees only their own, before the service is asked), so a
user learns nothing of another user's jobs, not even that they exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aoai_batch.client.normalize import snake_case
from aoai_batch.errors import NotFound
from aoai_batch.identity import current_viewer, may_see
from aoai_batch.models import Batch, BatchPage
from aoai_batch.store import Store


def batch_not_found(batch_id: str) -> NotFound:
    return NotFound(f"There is no batch {batch_id.strip()} on this server.", missing="batch")


def file_not_found(file_id: str) -> NotFound:
    return NotFound(f"There is no file {file_id.strip()} on this server.", missing="file")


def run_not_found(run_id: str) -> NotFound:
    return NotFound(f"There is no run {run_id} in the registry; list_runs shows the runs it knows.")


async def check_batch(store: Store, batch_id: str) -> None:
    """Refuse a batch the current viewer may not see (or one the registry does not know, for a viewer who
    sees only their own) as not found. Without a viewer nothing is read; an empty id is the client's to refuse.

    Raises:
        NotFound: not the viewer's batch (`batch_not_found`).
    """
    if current_viewer() is None or not batch_id.strip():
        return
    record = await store.get_batch(batch_id.strip())
    if not may_see(record.owner if record is not None else None):
        raise batch_not_found(batch_id)


async def check_file(store: Store, file_id: str) -> None:
    """As `check_batch`, for an uploaded file (its uploader is its owner).

    Raises:
        NotFound: not the viewer's file (`file_not_found`).
    """
    if current_viewer() is None or not file_id.strip():
        return
    record = await store.get_file(file_id.strip())
    if not may_see(record.owner if record is not None else None):
        raise file_not_found(file_id)


def service_key(key: str, owner: str | None) -> str:
    """The idempotency key as the service's batch metadata carries it: each user's keys are their own there
    too (the client finds a lost create by it), so a signed-in user's is a digest of their id and the key."""
    if owner is None:
        return key
    return "u-" + hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()


def run_key(key: str, owner: str | None) -> str:
    """The idempotency key a run is saved under (one per registry): the user's own, prefixed by their id."""
    return key if owner is None else f"{owner}:{key}"


def users_run_key(saved: str | None, owner: str | None) -> str | None:
    """The key as the user gave it (`run_key` undone)."""
    if saved is None or owner is None:
        return saved
    return saved.removeprefix(f"{owner}:")


def own_page(batches: Sequence[Batch], *, limit: int, after: str | None, status: str | None) -> BatchPage:
    """A page of a user's batches (newest first, as the registry lists them), paged as the service's list is:
    `after` the last id of the previous page (one not among them gives an empty page), `status` a filter."""
    listed = list(batches)
    if after is not None:
        ids = [batch.id for batch in listed]
        listed = listed[ids.index(after) + 1 :] if after in ids else []
    if status is not None:
        wanted = snake_case(status)
        listed = [batch for batch in listed if batch.status == wanted]
    page = listed[:limit]
    return BatchPage(batches=page, has_more=len(listed) > limit, last_id=page[-1].id if page else None)
