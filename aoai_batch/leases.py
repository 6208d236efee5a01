"""Leases: which process watches or advances a job, so that several processes on one registry (servers of
several MCP clients on one home, replicas of a team server on one database) never double the work.

A lease row names its holder and when it expires; a holder renews it while it works and releases it when
done. Whoever finds a lease expired, or held by a process of this host that died (`holder_is_gone`: a killed
replica on this host frees its leases at once), may take it. Taking is one conditional upsert per job in one
transaction: two processes asking at once cannot both win.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Literal

from aoai_batch.models import Batch

LeaseKind = Literal["run", "batch"]

RUN_LEASE_SECONDS = 300.0  # how long a silent holder keeps a run (renewed at every state change of a step): longer
# than a shard's results take to fetch
BATCH_LEASE_POLLS = 3  # a watched batch's lease lasts this many poll intervals (renewed at every poll)...
BATCH_LEASE_MIN_SECONDS = 5.0  # ...and never less: a busy event loop missing a few fast (emulator) polls keeps it
RUN_METADATA_KEY = "run_id"  # a run's shard batches carry their run's id in their metadata (runs/scheduler.py)


def batch_lease_seconds(poll_seconds: float) -> float:
    """How long a watched batch's lease lasts: a few polls, at least BATCH_LEASE_MIN_SECONDS."""
    return max(BATCH_LEASE_POLLS * poll_seconds, BATCH_LEASE_MIN_SECONDS)


def is_run_shard(batch: Batch) -> bool:
    """True for a batch a run submitted: its run's step watches it, under the run's lease (not a batch lease).

    A shard's idempotency key begins with its run's id (`scheduler.idempotency_key`); a user's batch cannot set
    the idempotency metadata key, so a user's `run_id` metadata alone never makes a batch a shard."""
    run_id = batch.metadata.get(RUN_METADATA_KEY)
    return bool(run_id) and batch.metadata.get("idempotency_key", "").startswith(f"{run_id}-s")


def new_holder() -> str:
    """This process's name in lease rows: host, pid (a dead pid on this host frees its leases at once), a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_gone(holder: str) -> bool:
    """True when `holder` names a process of this host that no longer runs (killed: its lease need not expire)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False
