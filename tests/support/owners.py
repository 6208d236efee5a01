"""Users in the ownership tests: their viewers, what a refusal tells them, a signed-in MCP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client

from aoai_batch.errors import BatchToolError, NotFound
from aoai_batch.identity import Viewer
from aoai_batch.store import Store
from tests.support.mcp import WAIT

ALICE = Viewer("alice-oid")
BOB = Viewer("bob-oid")
BOB_SHARED = Viewer("bob-oid", shared=True)

Refusal = tuple[type, str, str, object]


def refusal(error: BaseException, job_id: str) -> Refusal:
    """What a caller learns from an error: its class, kind, message (the id asked about taken out), `missing`."""
    assert isinstance(error, BatchToolError)
    return type(error), error.kind, str(error).replace(job_id, "<id>"), getattr(error, "missing", None)


async def refused(call: Callable[[str], Awaitable[Any]], job_id: str) -> Refusal:
    """`call(job_id)`'s NotFound, as `refusal` shows it (any other outcome fails the test)."""
    with pytest.raises(NotFound) as raised:
        await call(job_id)
    return refusal(raised.value, job_id)


async def open_registry(home: Path) -> Store:
    """The registry of a service whose home is `home`, opened beside it (as another process would)."""
    return await Store.open(home / "state.sqlite3")


@asynccontextmanager
async def client_with_token(url: str, token: str, inbox: MessageHandlerFnT | None = None) -> AsyncIterator[Client]:
    """A real MCP client over streamable HTTP sending `token`; `inbox` gets what the server sends outside
    responses (the SDK leaves a client it is given open: closed here)."""
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=WAIT)
    transport = streamable_http_client(url, http_client=http)
    async with http, Client(transport, mode="legacy", message_handler=inbox) as client:
        yield client
