"""Which batches a service asked the emulator about: a transport that records polls, and a bell that rings on each."""

from __future__ import annotations

import anyio
import httpx2


class Bell:
    """Rings whenever a recorder records a poll (one bell can serve several recorders)."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def ring(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class PollRecorder(httpx2.AsyncBaseTransport):
    """Sends every request on to the emulator, keeping the batch ids this service asked about (GET)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, bell: Bell | None = None) -> None:
        self.inner = inner
        self.polled: list[str] = []
        self.bell = bell or Bell()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        parts = request.url.path.rstrip("/").split("/")
        if request.method == "GET" and len(parts) >= 2 and parts[-2] == "batches":
            self.polled.append(parts[-1])
            self.bell.ring()
        return await self.inner.handle_async_request(request)
