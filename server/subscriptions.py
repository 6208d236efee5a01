"""Resource-change notifications in both protocol eras the SDK serves, and the workarounds that needs.

2026-07-28 and later: clients open `subscriptions/listen`; `MCPServer` serves it from a subscription bus,
so publishing a `ResourceUpdated` or `ResourcesListChanged` event is all it takes.

2025-11-25 (what desktop clients speak today): clients send `resources/subscribe`, which `MCPServer` does
not handle. This module registers `resources/subscribe` / `unsubscribe` on the low-level server, remembers
the subscribing connections, and sends them `notifications/resources/updated` itself. It also advertises
`resources.listChanged` (MCPServer builds its handshake capabilities without it) and remembers every
handshake-era connection so a new job can send them `notifications/resources/list_changed`, and serves
`logging/setLevel` (per connection) for the job-status log messages the watcher sends.
Everything that leans on SDK internals is in this module.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server import NotificationOptions
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourcesListChanged, ResourceUpdated
from mcp.shared.exceptions import MCPError
from mcp_types import (
    EmptyResult,
    LoggingLevel,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    SetLevelRequestParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from aoai_batch.identity import Viewer, current_viewer

logger = logging.getLogger(__name__)

LEVELS: list[LoggingLevel] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
LOGGER_NAME = "aoai-batch"

# What a dead or channel-less connection raises when we push to it: forget it and carry on.
_GONE = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, MCPError)


def _connection_key(session: ServerSession) -> int:
    # The SDK builds a new ServerSession proxy for every request; the connection behind it is the
    # stable identity of a client. It is not public, hence this one accessor.
    return id(session._connection)


@dataclass
class _Peer:
    session: ServerSession
    uris: set[str] = field(default_factory=set)
    log_level: LoggingLevel = "info"
    viewer: Viewer | None = None  # who signed in on this connection (its first request's); None without sign-in


class Subscriptions:
    """Who to tell when a resource or the job list changes, in both eras."""

    def __init__(self, bus: InMemorySubscriptionBus | None = None) -> None:
        self.bus = bus or InMemorySubscriptionBus()
        self._peers: dict[int, _Peer] = {}

    def install(self, server: MCPServer[Any]) -> None:
        """Serve the handshake-era subscribe methods and track handshake-era connections on `server`."""
        lowlevel = server._lowlevel_server
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)
        # Registered directly: the constructor argument for it warns that logging leaves the 2026 spec.
        lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, self._set_level)
        server.middleware.append(self._track_handshake_peers)
        # Every transport calls create_initialization_options() without options; bind ours so the
        # handshake advertises resources.listChanged, which the watcher does send.
        lowlevel.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            lowlevel.create_initialization_options, NotificationOptions(resources_changed=True)
        )

    def subscribers(self, uri: str) -> int:
        """How many handshake-era connections subscribe to `uri` (for tests and diagnostics)."""
        return sum(1 for peer in self._peers.values() if uri in peer.uris)

    async def resource_updated(self, uri: str) -> None:
        """Tell every subscriber of `uri`, in both eras."""
        await self.bus.publish(ResourceUpdated(uri=uri))
        for key, peer in list(self._peers.items()):
            if uri in peer.uris:
                await self._send(key, peer, lambda s: s.send_resource_updated(uri))

    async def resources_changed(self) -> None:
        """Tell every client that the resource list changed (a new job), in both eras."""
        await self.bus.publish(ResourcesListChanged())
        for key, peer in list(self._peers.items()):
            await self._send(key, peer, lambda s: s.send_resource_list_changed())

    async def log(self, level: LoggingLevel, data: object, *, owner: str | None) -> None:
        """Send a log message about a job of `owner` to the handshake-era clients whose level lets it through
        and whose user may see the job (`Viewer.may_see`: another user's job is never told of)."""
        notification = LoggingMessageNotification(
            params=LoggingMessageNotificationParams(level=level, data=data, logger=LOGGER_NAME)
        )
        for key, peer in list(self._peers.items()):
            if LEVELS.index(level) >= LEVELS.index(peer.log_level) and (
                peer.viewer is None or peer.viewer.may_see(owner)
            ):
                await self._send(key, peer, lambda s: s.send_notification(notification))

    async def _send(self, key: int, peer: _Peer, send: Any) -> None:
        try:
            await send(peer.session)
        except _GONE:
            logger.debug("dropping a connection that can no longer be notified")
            self._peers.pop(key, None)

    def _peer(self, session: ServerSession) -> _Peer:
        key = _connection_key(session)
        if key not in self._peers:  # the viewer middleware (installed before this one) runs around this call
            self._peers[key] = _Peer(session, viewer=current_viewer())
        return self._peers[key]

    async def _subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        self._peer(ctx.session).uris.add(str(params.uri))
        return EmptyResult()

    async def _unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        self._peer(ctx.session).uris.discard(str(params.uri))
        return EmptyResult()

    async def _set_level(self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        self._peer(ctx.session).log_level = params.level
        return EmptyResult()

    async def _track_handshake_peers(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            self._peer(ctx.session)
        return result
