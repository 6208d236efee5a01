"""The runs' background task: advances every active run while the server is up, and tells subscribers.

A run is moved by whoever holds its lease (`RunService.advance`): this task while the server runs, `worker`
from a shell, or a waiting `get_run`. On start it picks up the runs a previous process left active, so a
restarted server resumes them. Tools report what they saw too (`observed`), so a change a tool caused
reaches subscribers at once and is not announced twice.
"""

from __future__ import annotations

from aoai_batch.runs.models import Run, RunResultsSummary
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
    """Steps every active run."""

    what = "advancing runs"

    async def tick(self) -> list[Run]:
        return await self.step_once()

    async def step_once(self) -> list[Run]:
        """One step of every active run; notifies about those that changed and returns them."""
        runs = await self._services.runs()
        return [run for run in await runs.advance_all() if await self.observed(run)]

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
