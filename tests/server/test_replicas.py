"""Replicas: two servers over real streamable HTTP on different ports, one registry (a SQLite home, or a
PostgreSQL database), one emulator; one client whose every request a balancer sends to the replica the test
names (as a round-robin balancer would send them anywhere), and subscribers on one replica hearing changes
the other one polled."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ResourceUpdatedNotification
from starlette.types import ASGIApp

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import Settings
from server.app import build_server
from server.http import MCP_PATH, http_app
from tests.support.clock import HOURS
from tests.support.http_server import served_for_url
from tests.support.inbox import Inbox
from tests.support.mcp import WAIT, make_settings, structured
from tests.support.polls import Bell, PollRecorder


class Balancer(httpx2.AsyncBaseTransport):
    """Sends each request to the replica named by `target` (its base URL's host and port), and keeps which."""

    def __init__(self, replicas: dict[str, str]) -> None:
        self.replicas = {name: httpx2.URL(url) for name, url in replicas.items()}
        self.target = next(iter(replicas))
        self.sent: list[tuple[str, str]] = []  # (replica, JSON-RPC method or HTTP method)
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        replica = self.replicas[self.target]
        request.url = request.url.copy_with(host=replica.host, port=replica.port)
        request.headers["host"] = f"{replica.host}:{replica.port}"
        self.sent.append((self.target, request.method))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Both replicas' settings: one home and workspace, and on PostgreSQL one database."""
    extra: dict[str, Any] = {}
    if request.param == "postgresql":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path, **extra)


def always(app: ASGIApp) -> Callable[[str], ASGIApp]:
    return lambda _: app


@asynccontextmanager
async def replicas(
    settings: Settings, emulator: Emulator, *, stateless: bool, first_poll_delay: float = 0
) -> AsyncIterator[tuple[dict[str, str], dict[str, PollRecorder]]]:
    """Servers A and B on their own loopback ports; their base URLs and what each asked the emulator."""
    urls: dict[str, str] = {}
    polls: dict[str, PollRecorder] = {}
    bell = Bell()
    async with AsyncExitStack() as stack:
        for name in ("A", "B"):
            polls[name] = PollRecorder(emulator.transport(), bell)
            server = build_server(settings, transport=polls[name], first_poll_delay=first_poll_delay)
            app = http_app(server, host="127.0.0.1", token=None, stateless=stateless)
            urls[name] = await stack.enter_async_context(served_for_url(always(app)))
        yield urls, polls


@asynccontextmanager
async def balanced_client(balancer: Balancer, mode: str, **client: Any) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(transport=balancer, timeout=WAIT)
    url = str(balancer.replicas[balancer.target]) + MCP_PATH
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, **client) as connected:
        yield connected


async def the_flow_alternating(client: Client, balancer: Balancer, fake_clock: FakeClock, batch_file: Path) -> None:
    """upload on A, create on B, get_batch on A, list on B, fetch on A: each sees what the others did."""
    balancer.target = "A"
    uploaded = structured(await client.call_tool("upload_file", {"path": batch_file.name}))
    balancer.target = "B"
    created = structured(await client.call_tool("create_batch", {"input_file_id": uploaded["file"]["id"]}))
    fake_clock.advance(2 * HOURS)
    balancer.target = "A"
    got = structured(await client.call_tool("get_batch", {"batch_id": created["id"]}))
    balancer.target = "B"
    listed = structured(await client.call_tool("list_batches", {}))
    balancer.target = "A"
    fetched = structured(await client.call_tool("fetch_results", {"batch_id": created["id"], "output_dir": "out"}))
    assert got["status"] == "completed"
    assert [batch["id"] for batch in listed["batches"]] == [created["id"]]
    assert listed["batches"][0]["status"] == "completed"
    assert fetched["counts"]["succeeded"] == 3
    assert await anyio.Path(fetched["results_path"]).is_file()
    assert {replica for replica, _ in balancer.sent} == {"A", "B"}


@pytest.mark.parametrize(
    ("mode", "stateless"),
    [
        pytest.param("legacy", True, id="handshake-era-client-stateless-replicas"),
        pytest.param("auto", False, id="2026-client-needs-no-session-even-when-replicas-keep-them"),
    ],
)
async def test_a_client_alternating_between_replicas_sees_one_registry(
    shared_settings: Settings,
    emulator: Emulator,
    fake_clock: FakeClock,
    batch_file: Path,
    mode: str,
    stateless: bool,
) -> None:
    async with replicas(shared_settings, emulator, stateless=stateless) as (urls, _):
        balancer = Balancer(urls)
        with anyio.fail_after(WAIT):
            async with balanced_client(balancer, mode) as client:
                await the_flow_alternating(client, balancer, fake_clock, batch_file)


async def test_a_handshake_era_session_is_one_replicas_own_without_stateless(
    tmp_path: Path, emulator: Emulator, batch_file: Path
) -> None:
    async with replicas(make_settings(tmp_path), emulator, stateless=False) as (urls, _):
        balancer = Balancer(urls)
        async with balanced_client(balancer, "legacy") as client:
            structured(await client.call_tool("list_batches", {}))
            balancer.target = "B"
            # B never saw A's session: hence sticky sessions, or --stateless
            with anyio.fail_after(WAIT), pytest.raises(MCPError, match="Session not found"):
                await client.call_tool("list_batches", {})


async def test_a_subscriber_on_one_replica_hears_a_change_the_other_replica_polled(
    shared_settings: Settings, emulator: Emulator, fake_clock: FakeClock, batch_file: Path
) -> None:
    inbox = Inbox()
    async with replicas(shared_settings, emulator, stateless=False) as (urls, polls):
        with anyio.fail_after(WAIT):
            a = Balancer(urls)
            async with balanced_client(a, "legacy") as on_a:
                uploaded = structured(await on_a.call_tool("upload_file", {"path": batch_file.name}))
                created = structured(await on_a.call_tool("create_batch", {"input_file_id": uploaded["file"]["id"]}))
                while created["id"] not in polls["A"].polled + polls["B"].polled:
                    await polls["A"].bell.wait()  # until one replica's watcher has taken the batch's lease
            poller = "A" if created["id"] in polls["A"].polled else "B"
            other = "B" if poller == "A" else "A"
            listener = Balancer(urls)
            listener.target = other
            async with balanced_client(listener, "legacy", message_handler=inbox) as on_other:
                uri = f"batch://jobs/{created['id']}"
                with pytest.warns(MCPDeprecationWarning):
                    await on_other.subscribe_resource(uri)
                fake_clock.advance(2 * HOURS)
                await inbox.wait_for(ResourceUpdatedNotification, uri=uri)
    assert created["id"] not in polls[other].polled  # it heard the change without ever asking the service
