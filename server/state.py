"""What the lifespan yields: the one object tools, prompts and resources reach everything through."""

from __future__ import annotations

from dataclasses import dataclass

from aoai_batch.settings import Settings
from server.service_handle import ServiceHandle
from server.subscriptions import Subscriptions
from server.watcher import Watcher
from tools.workspace import Workspace


@dataclass
class AppState:
    """The lifespan state (it satisfies `tools.deps.ToolDeps`)."""

    settings: Settings
    services: ServiceHandle
    workspace: Workspace
    watcher: Watcher
    subscriptions: Subscriptions
