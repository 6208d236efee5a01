from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.subscriptions import ServerEvent, Subscription
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import (
    LoggingMessageNotification,
    ResourceListChangedNotification,
    ResourceUpdatedNotification,
)

from aoai_batch.emulator import FakeClock
from server.state import AppState
from tests.support.clock import HOURS
from tests.support.inbox import Inbox
from tests.support.mcp import WAIT, start_batch


async def test_a_handshake_era_subscriber_hears_when_its_job_changes(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    inbox = Inbox()
    async with Client(app, mode="legacy", message_handler=inbox) as client:
        created = await start_batch(client, batch_file)
        uri = f"batch://jobs/{created['id']}"
        with pytest.warns(MCPDeprecationWarning):  # resources/subscribe is the 2025-11-25 way
            await client.subscribe_resource(uri)
        fake_clock.advance(2 * HOURS)
        await inbox.wait_for(ResourceUpdatedNotification, uri=uri)
        job = await client.read_resource(uri)
    assert '"completed"' in job.contents[0].text  # type: ignore[union-attr]


async def test_a_handshake_era_client_hears_that_the_job_list_changed(
    app: MCPServer[AppState], batch_file: Path
) -> None:
    inbox = Inbox()
    async with Client(app, mode="legacy", message_handler=inbox) as client:
        await start_batch(client, batch_file)
        await inbox.wait_for(ResourceListChangedNotification)


async def test_after_unsubscribe_no_updates_arrive_for_that_job(
    app: MCPServer[AppState], batch_file: Path, workspace: Path, fake_clock: FakeClock
) -> None:
    inbox = Inbox()
    async with Client(app, mode="legacy", message_handler=inbox) as client:
        created = await start_batch(client, batch_file)
        uri = f"batch://jobs/{created['id']}"
        with pytest.warns(MCPDeprecationWarning):
            await client.subscribe_resource(uri)
        with pytest.warns(MCPDeprecationWarning):
            await client.unsubscribe_resource(uri)
        fake_clock.advance(2 * HOURS)
        # the job's log message proves the watcher saw the change that was not sent as an update
        await inbox.wait_for(LoggingMessageNotification)
    assert not [m for m in inbox.messages if isinstance(m, ResourceUpdatedNotification)]


async def test_log_messages_respect_the_level_a_client_sets(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    inbox = Inbox()
    async with Client(app, mode="legacy", message_handler=inbox) as client:
        with pytest.warns(MCPDeprecationWarning):
            await client.set_logging_level("error")
        created = await start_batch(client, batch_file)
        uri = f"batch://jobs/{created['id']}"
        with pytest.warns(MCPDeprecationWarning):
            await client.subscribe_resource(uri)
        fake_clock.advance(2 * HOURS)
        await inbox.wait_for(ResourceUpdatedNotification, uri=uri)
    assert not [m for m in inbox.messages if isinstance(m, LoggingMessageNotification)]


async def next_event(subscription: Subscription, kind: type) -> ServerEvent:
    with anyio.fail_after(WAIT):
        async for event in subscription:
            if isinstance(event, kind):
                return event
    raise AssertionError("the listen stream ended without the event")


async def test_a_listen_era_subscriber_hears_when_its_job_changes(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="auto") as client:
        created = await start_batch(client, batch_file)
        uri = f"batch://jobs/{created['id']}"
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            fake_clock.advance(2 * HOURS)
            event = await next_event(subscription, ResourceUpdated)
    assert event == ResourceUpdated(uri=uri)


async def test_a_listen_era_client_hears_that_the_job_list_changed(app: MCPServer[AppState], batch_file: Path) -> None:
    async with Client(app, mode="auto") as client, client.listen(resources_list_changed=True) as subscription:
        await start_batch(client, batch_file)
        event = await next_event(subscription, ResourcesListChanged)
    assert event == ResourcesListChanged()
