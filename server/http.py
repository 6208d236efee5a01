"""Streamable HTTP at /mcp: loopback with DNS-rebinding protection, or any address behind a bearer token."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from aoai_batch.errors import InvalidInput
from server.uvicorn_server import QuietServer

MCP_PATH = "/mcp"
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_for(host: str) -> TransportSecuritySettings:
    """Loopback: only loopback Host and Origin headers (a web page cannot rebind a name onto us).
    Elsewhere the bearer token is the guard, and the Host is whatever name clients use."""
    if is_loopback(host):
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


class BearerToken:
    """Refuses every HTTP request that does not carry `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": b"Send Authorization: Bearer <AOAI_BATCH_HTTP_TOKEN>."})
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        return hmac.compare_digest(given, self._expected)


def http_app(server: MCPServer[Any], *, host: str, token: str | None) -> ASGIApp:
    """The ASGI app for `host`; a non-loopback address without a token is refused."""
    if not is_loopback(host) and not token:
        raise InvalidInput(
            f"Refusing to serve on {host}, which is not a loopback address, without a token: "
            "set AOAI_BATCH_HTTP_TOKEN (clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1."
        )
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=host, transport_security=security_for(host)
    )
    return BearerToken(app, token) if token else app


def url_for(host: str, port: int) -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}{MCP_PATH}"


class Uvicorn(QuietServer):
    """uvicorn that tells `on_ready` the URL it listens on, and ends quietly on Ctrl-C or SIGTERM."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[str], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready(url_for(self.config.host, self.bound_port()))


async def serve_http(
    server: MCPServer[Any], *, host: str, port: int, token: str | None, on_ready: Callable[[str], None]
) -> None:
    """Serve until Ctrl-C or SIGTERM; `on_ready` gets the URL once the socket is bound."""
    app = http_app(server, host=host, token=token)
    config = uvicorn.Config(app, host=host.strip("[]"), port=port, log_level="warning", lifespan="on")
    await Uvicorn(config, on_ready).serve()
