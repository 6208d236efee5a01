"""The Emulator: its state, its background work, its ASGI app and an in-process transport."""

from __future__ import annotations

from concurrent.futures import Future
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import anyio
import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal

from aoai_batch.emulator.app import build_app
from aoai_batch.emulator.clock import EmulatorClock, FakeClock, SystemClock
from aoai_batch.emulator.echo import EchoEngine
from aoai_batch.emulator.faults import ConnectionDropped
from aoai_batch.emulator.forward import ForwardEngine
from aoai_batch.emulator.gate import QuietDrops
from aoai_batch.emulator.lifecycle import Engine
from aoai_batch.emulator.operations import Operations
from aoai_batch.settings import EmulatorSettings

TICK_SECONDS = 0.2  # how often a real-time emulator moves its batches along in the background
DEFAULT_KEY = "emulator"  # any non-empty key is accepted when none is configured


class EmulatorTransport(httpx2.ASGITransport):
    """The ASGI transport, with a dropped connection (an injected fault) surfacing as the network error it is."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx2.RemoteProtocolError(str(exc), request=request) from exc


class Emulator:
    """The Azure OpenAI Files + Batches emulator. Use `async with emulator:` before sending it requests."""

    def __init__(self, settings: EmulatorSettings | None = None, *, clock: EmulatorClock | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        self.clock: EmulatorClock = clock or SystemClock()
        engine: Engine = ForwardEngine(self.settings) if self.settings.engine == "forward" else EchoEngine()
        self.operations = Operations(self.settings, self.clock, engine)
        self.worker = engine.worker(self.operations.runner, self.clock)
        self.asgi = build_app(self.operations)  # raises ConnectionDropped on an injected drop: the transport's cue
        self.app = QuietDrops(self.asgi)  # what a server (uvicorn) serves
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._tasks: list[Future[Any]] = []

    @property
    def key(self) -> str:
        """The key clients should send (`api-key` header or `Authorization: Bearer`)."""
        configured = self.settings.key
        return configured.get_secret_value() if configured else DEFAULT_KEY

    def transport(self) -> httpx2.ASGITransport:
        """A transport that sends requests straight to the app, without a port."""
        return EmulatorTransport(app=self.asgi)

    async def __aenter__(self) -> Emulator:
        await anyio.to_thread.run_sync(self.operations.open)
        # Background work runs on an event loop of its own (a portal thread), so entering and leaving the
        # emulator may happen in different tasks (as async fixtures and lifespans do).
        if self.worker is not None or not isinstance(self.clock, FakeClock):
            self._portal_cm = start_blocking_portal()
            portal = self._portal_cm.__enter__()
            if not isinstance(self.clock, FakeClock):
                self._tasks.append(portal.start_task_soon(self._tick))
            if self.worker is not None:
                self._tasks.append(portal.start_task_soon(self.worker))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await anyio.to_thread.run_sync(self._stop_background)
        finally:
            await anyio.to_thread.run_sync(self.operations.close)

    def _stop_background(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        portal_cm, self._portal_cm = self._portal_cm, None
        if portal_cm is not None:
            portal_cm.__exit__(None, None, None)

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(TICK_SECONDS)
            await self.operations.tick()
