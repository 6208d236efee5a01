"""The runs' background task: advances every active run while the server is up, and tells subscribers.

A run is moved by whoever holds its lease (`RunService.advance`): this task while the server runs, `worker`
from a shell, or a waiting `get_run`. On start it picks up the runs a previous process left active, so a
restarted server resumes them. Tools report what they saw too (`observed`), so a change a tool caused
reaches subscribers at once and is not announced twice.
"""

from __future__ import annotations

from aoai_batch.runs.models import Run, RunResultsSummary
from server.service_handle import ServiceHandle
from server.subscriptions import Subscriptions
from server.watcher import Periodic

RUNS_URI = "batch://runs"


def run_uri(run_id: str) -> str:
    return f"{RUNS_URI}/{run_id}"


def run_results_uri(run_id: str) -> str:
    return f"{RUNS_URI}/{run_id}/results"


def _fingerprint(run: Run) -> str:
    """What subscribers care about: where the run and its shards are (not the other runs' ledger)."""
    return run.model_dump_json(exclude={"ledger", "waiting_for"})


class RunsWatcher(Periodic):
    """Steps every active run (those another process holds are only read: their changes reach subscribers here too)."""

    what = "advancing runs"

    def __init__(
        self, services: ServiceHandle, subscriptions: Subscriptions, *, interval: float, first_delay: float
    ) -> None:
        super().__init__(services, subscriptions, interval=interval, first_delay=first_delay)
        self._going: set[str] = set()  # the runs active at the last step

    async def tick(self) -> list[Run]:
        return await self.step_once()

    async def step_once(self) -> list[Run]:
        """One step of every active run; notifies about those that changed (whoever changed them) and returns them."""
        runs = await self._services.runs()
        current = {run.id: run for run, _ in await runs.advance_active()}
        for run_id in self._going - current.keys():  # ended since the last step (here or in another process)
            current[run_id] = await runs.get_run(run_id)
        self._going = {run.id for run in current.values() if not run.terminal}
        return [run for run in current.values() if await self.observed(run)]

    async def started(self, run: Run) -> None:
        """A tool started a run: the run list changed."""
        self._seen[run.id] = _fingerprint(run)
        await self._subscriptions.resources_changed()
        await self._subscriptions.resource_updated(RUNS_URI)

    async def observed(self, run: Run) -> bool:
        """Record a run's state; if it differs from the last one seen, notify its subscribers (and the list's)."""
        fingerprint = _fingerprint(run)
        previous = self._seen.get(run.id)
        self._seen[run.id] = fingerprint
        if previous == fingerprint:
            return False
        await self._subscriptions.resource_updated(run_uri(run.id))
        await self._subscriptions.resource_updated(RUNS_URI)
        owner = await (await self._services.runs()).owner_of(run.id)
        await self._subscriptions.log(
            "info", {"run_id": run.id, "status": run.status, "progress_percent": run.progress_percent}, owner=owner
        )
        return True

    async def results_fetched(self, summary: RunResultsSummary) -> None:
        """A run's results were merged: its results resource and the run changed."""
        await self._subscriptions.resource_updated(run_results_uri(summary.run_id))
        await self._subscriptions.resource_updated(run_uri(summary.run_id))
