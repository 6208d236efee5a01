"""Changes other replicas announce, told to this server's subscribers at once (PostgreSQL's LISTEN/NOTIFY).

The replica that polls a batch or steps a run announces each change it saves (`Store.announce`); every other
replica hears it here, reads that job from the registry and hands it to its watcher's `observed`, which
notifies the job's subscribers on this replica (and dedups: the watcher's own tick reading the registry
later says nothing twice). On SQLite the feed never yields: the processes of one home see each other's changes
when their watchers read the registry at every tick.
"""

from __future__ import annotations

import logging

import anyio

from aoai_batch.errors import BatchToolError, NotFound
from server.runs_watcher import RunsWatcher
from server.service_handle import ServiceHandle
from server.watcher import Watcher

logger = logging.getLogger(__name__)


class Fanout:
    """Listens to the registry's change feed for as long as the server runs."""

    def __init__(
        self, services: ServiceHandle, watcher: Watcher, run_watcher: RunsWatcher, *, first_delay: float
    ) -> None:
        self._services = services
        self._first_delay = first_delay  # as the watchers': start-up does not open the service
        self._watcher = watcher
        self._run_watcher = run_watcher

    async def run(self) -> None:
        await anyio.sleep(self._first_delay)
        try:
            service = await self._services.get()
            async with service.changes() as feed:
                async for kind, job_id in feed:
                    await self.heard(kind, job_id)
        except BatchToolError as exc:  # the registry cannot be reached: the watchers' ticks still read it
            logger.warning("listening for other replicas' changes stopped: %s", exc)

    async def heard(self, kind: str, job_id: str) -> None:
        """Another replica changed job `job_id` (kind "batch" or "run"): tell this server's subscribers."""
        try:
            if kind == "batch":
                batch = await (await self._services.get()).registry_batch(job_id)
                if batch is not None:
                    await self._watcher.heard(batch)
            elif kind == "run":
                await self._run_watcher.observed(await (await self._services.runs()).get_run(job_id))
        except NotFound:
            pass  # announced and gone (another registry's run id, say): nothing to tell
        except BatchToolError as exc:
            logger.warning("could not read %s %s another replica changed: %s", kind, job_id, exc)
