"""The notifications an MCP client receives outside responses."""

from __future__ import annotations

import anyio
from mcp.client.session import IncomingMessage

from tests.support.mcp import WAIT


class Inbox:
    """Collects what the server sends outside responses, and lets a test wait for one kind.

    Pass it as the client's `message_handler`.
    """

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self._arrived = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def wait_for(self, kind: type, **fields: object) -> IncomingMessage:
        with anyio.fail_after(WAIT):
            while True:
                for message in self.messages:
                    params = getattr(message, "params", None)
                    if isinstance(message, kind) and all(getattr(params, k, None) == v for k, v in fields.items()):
                        return message
                self._arrived = anyio.Event()
                await self._arrived.wait()
