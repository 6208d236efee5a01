"""What the lifespan yields: the one object tools, prompts and resources reach everything through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aoai_batch.settings import Settings
from server.runs_watcher import RunsWatcher
from server.service_handle import ServiceHandle
from server.subscriptions import Subscriptions
from server.watcher import Watcher
from tools.workspace import Workspace

if TYPE_CHECKING:  # the run service imports `openai`; start-up time keeps it out of this import path
    from aoai_batch.runs.service import RunService


@dataclass(frozen=True)
class RunsHandle:
    """`await state.runs.get()`: the run service, opened with the batch service (`ServiceHandle.runs`)."""

    services: ServiceHandle

    async def get(self) -> RunService:
        return await self.services.runs()


@dataclass
class AppState:
    """The lifespan state (it satisfies `tools.deps.ToolDeps`)."""

    settings: Settings
    services: ServiceHandle
    workspace: Workspace
    watcher: Watcher
    subscriptions: Subscriptions
    run_watcher: RunsWatcher

    @property
    def runs(self) -> RunsHandle:
        return RunsHandle(self.services)
