"""The BatchService, opened on first use in a task of its own.

Opening the service imports `openai` (~1 s) and, with no endpoint, starts the embedded emulator. An MCP
client spawns this server on every launch and waits for `initialize` + `tools/list`, so neither may happen
before those are answered: the service opens when a tool, resource or the watcher first asks for it.
It opens and closes inside one dedicated task because it holds task groups (the emulator's workers),
which must be entered and exited by the same task. The run service (SPEC §9) opens beside it, in the
same task, on the same registry.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from aoai_batch.errors import BatchToolError, ConnectionFailed, ServiceUnavailable
from aoai_batch.settings import Settings

if TYPE_CHECKING:
    import httpx2

    from aoai_batch.runs.service import RunService
    from aoai_batch.service import BatchService

logger = logging.getLogger(__name__)


class ServiceHandle:
    """`await handle.get()` returns the open service, opening it the first time."""

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport
        self._service: BatchService | None = None
        self._runs: RunService | None = None
        self._error: BatchToolError | None = None
        self._wanted = anyio.Event()
        self._ready = anyio.Event()
        self._closing = anyio.Event()
        self._lock = anyio.Lock()

    def start(self, task_group: TaskGroup) -> None:
        task_group.start_soon(self._run)

    def close(self) -> None:
        self._closing.set()
        self._wanted.set()

    async def get(self) -> BatchService:
        """The open service; raises the error that stopped it from opening."""
        async with self._lock:
            if self._service is None:
                self._error = None
                self._ready = anyio.Event()
                self._wanted.set()
                await self._ready.wait()
            if self._service is None:
                raise self._error or ConnectionFailed("The batch service is shutting down; start the server again.")
            return self._service

    async def runs(self) -> RunService:
        """The open run service (opened with the batch service); raises what stopped them from opening."""
        await self.get()
        if self._runs is None:
            raise ConnectionFailed("The batch service is shutting down; start the server again.")
        return self._runs

    def _failed(self, error: BatchToolError) -> None:
        self._error = error
        self._wanted = anyio.Event()  # the next get() tries again

    async def _run(self) -> None:
        await self._wanted.wait()
        if self._closing.is_set():
            return  # never used: nothing to open, nothing to import
        # Imported on first use, not at the top: with the client and the validator it costs tens of
        # milliseconds that start-up (bench/startup.py) does not need; opening the service imports `openai`.
        from aoai_batch.runs.service import RunService
        from aoai_batch.service import BatchService

        while not self._closing.is_set():
            await self._wanted.wait()
            if self._closing.is_set():
                break
            try:
                async with (
                    BatchService.open(self._settings, transport=self._transport) as service,
                    RunService.open(self._settings, service) as runs,
                ):
                    self._service, self._runs = service, runs
                    self._ready.set()
                    await self._closing.wait()
            except BatchToolError as exc:
                self._failed(exc)
            except Exception as exc:  # a service that cannot start must not take the server down with it
                logger.exception("the batch service could not start")
                self._failed(ServiceUnavailable(f"The batch service could not start ({exc}); see the server log."))
            finally:
                self._service = self._runs = None
                self._ready.set()
