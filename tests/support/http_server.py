"""An ASGI app served by uvicorn on a free loopback port, in a thread with its own event loop."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal

import anyio
import uvicorn
from starlette.types import ASGIApp

from aoai_batch.emulator import Emulator, FakeClock

SERVER_START_SECONDS = 20.0


@dataclass
class EmulatorServer:
    """An emulator served by uvicorn on a loopback port, in a thread of its own."""

    url: str
    key: str
    emulator: Emulator
    clock: FakeClock


class ServerThread:
    """Serves an ASGI app with uvicorn on a free loopback port, in a thread with its own event loop.

    `context` (e.g. an Emulator) is entered in that loop around serving.
    """

    def __init__(self, app: ASGIApp, context: AbstractAsyncContextManager[object] | None = None) -> None:
        self.context = context
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="critical", lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="emulator-server", daemon=True)

    def _main(self) -> None:
        try:
            anyio.run(self._serve)
        except BaseException as exc:  # reported to the test thread, which raises it
            self.error = exc

    async def _serve(self) -> None:
        async with self.context or contextlib.nullcontext():
            await self.server.serve(sockets=[self.sock])

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not self.server.started:
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError("the emulator server did not start") from self.error
            if time.monotonic() > deadline:
                raise TimeoutError("the emulator server did not start in time")
            time.sleep(0.01)  # waiting for start-up, not timing anything
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(SERVER_START_SECONDS)
        self.sock.close()
        if self.error is not None:
            raise self.error


@contextlib.asynccontextmanager
async def served_here(app: ASGIApp) -> AsyncIterator[str]:
    """Serves `app` with uvicorn in the current event loop (so it can share anyio events with the test);
    yields its base URL. The socket listens before uvicorn starts, so a connection made meanwhile waits in
    its backlog: there is no start-up to wait for."""
    async with _served(lambda _: app, lifespan="off") as url:
        yield url


@contextlib.asynccontextmanager
async def served_for_url(app_for: Callable[[str], ASGIApp]) -> AsyncIterator[str]:
    """As `served_here`, for an app that must know its own base URL (`app_for` gets it) and has a lifespan
    (the MCP server's streamable HTTP app: its session manager runs there)."""
    async with _served(app_for, lifespan="on") as url:
        yield url


@contextlib.asynccontextmanager
async def _served(app_for: Callable[[str], ASGIApp], *, lifespan: Literal["on", "off"]) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app_for(url), log_level="critical", lifespan=lifespan, ws="none"))
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, [sock])
            try:
                yield url
            finally:
                server.should_exit = True
    finally:
        sock.close()
