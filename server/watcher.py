"""The background watcher: polls the jobs that are not finished and tells subscribers what changed.

Tool calls report what they saw too (`observed`), so a change noticed by `get_batch` reaches subscribers
at once and is not announced twice. A job this server has not seen before sends list-changed.
"""

from __future__ import annotations

import logging

import anyio

from aoai_batch.errors import BatchToolError
from aoai_batch.models import Batch
from server.service_handle import ServiceHandle
from server.subscriptions import Subscriptions

logger = logging.getLogger(__name__)

JOBS_URI = "batch://jobs"


def job_uri(batch_id: str) -> str:
    return f"{JOBS_URI}/{batch_id}"


def results_uri(batch_id: str) -> str:
    return f"{JOBS_URI}/{batch_id}/results"


def _fingerprint(batch: Batch) -> str:
    """The service's view of a job; local paths are left out (results_fetched announces those)."""
    return batch.model_dump_json(exclude={"input_path", "results_path"})


class Periodic:
    """A background task of the server: `tick` every `interval` seconds, the first time after `first_delay`
    (start-up stays quick). A tick that fails for a reason of the service's is logged and tried again later."""

    what = "background step"

    def __init__(
        self, services: ServiceHandle, subscriptions: Subscriptions, *, interval: float, first_delay: float
    ) -> None:
        self._services = services
        self._subscriptions = subscriptions
        self.interval = interval
        self.first_delay = first_delay
        self._seen: dict[str, str] = {}  # id -> the fingerprint subscribers last heard of

    async def run(self) -> None:
        await anyio.sleep(self.first_delay)
        while True:
            try:
                await self.tick()
            except BatchToolError as exc:  # the service is unreachable for now: say so and try again later
                logger.warning("%s failed: %s", self.what, exc)
            await anyio.sleep(self.interval)

    async def tick(self) -> object:
        raise NotImplementedError


class Watcher(Periodic):
    """Polls the jobs that are not finished."""

    what = "watcher poll"

    def __init__(
        self, services: ServiceHandle, subscriptions: Subscriptions, *, interval: float, first_delay: float
    ) -> None:
        super().__init__(services, subscriptions, interval=interval, first_delay=first_delay)
        self._known: set[str] | None = None

    async def tick(self) -> list[Batch]:
        return await self.poll_once()

    async def poll_once(self) -> list[Batch]:
        """One poll: refresh the active jobs, notify about changes and new jobs; returns what changed."""
        service = await self._services.get()
        await service.refresh_active()
        jobs = await service.registry_jobs()
        new = self._known is not None and any(job.id not in self._known for job in jobs)
        changed = [job for job in jobs if await self.observed(job)]
        self._known = {job.id for job in jobs}
        if new:
            await self._subscriptions.resources_changed()
        return changed

    async def created(self, batch: Batch) -> None:
        """A tool created a job: the job list changed."""
        self._seen[batch.id] = _fingerprint(batch)
        if self._known is not None:
            self._known.add(batch.id)
        await self._subscriptions.resources_changed()

    async def heard(self, batch: Batch) -> None:
        """Another replica saved a change of `batch`: a job this server did not know changes the job list."""
        if self._known is not None and batch.id not in self._known:
            await self.created(batch)
        else:
            await self.observed(batch)

    async def observed(self, batch: Batch) -> bool:
        """Record a job's state; if it differs from the last one seen, notify its subscribers."""
        fingerprint = _fingerprint(batch)
        previous = self._seen.get(batch.id)
        self._seen[batch.id] = fingerprint
        if previous is not None and previous != fingerprint:
            await self._subscriptions.resource_updated(job_uri(batch.id))
            owner = await (await self._services.get()).owner_of(batch.id)
            await self._subscriptions.log(
                "info",
                {"batch_id": batch.id, "status": batch.status, "progress_percent": batch.progress_percent},
                owner=owner,
            )
            return True
        return False

    async def results_fetched(self, batch: Batch) -> None:
        """Results were written: the results resource and the job changed."""
        await self._subscriptions.resource_updated(results_uri(batch.id))
        await self._subscriptions.resource_updated(job_uri(batch.id))
