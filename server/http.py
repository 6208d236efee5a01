"""Streamable HTTP at /mcp: loopback with DNS-rebinding protection, or any address behind a guard.

The guard is either the static `AOAI_BATCH_HTTP_TOKEN` (`BearerToken`) or signed-in users (`server/oauth.py`,
which the SDK applies inside the app); never both (`Settings.sign_in` refuses that).
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def require_guard(host: str, *, token: str | None, sign_in: bool) -> None:
    """Raises InvalidInput for a non-loopback `host` with neither a token nor sign-in to guard it."""
    if not is_loopback(host) and not token and not sign_in:
        raise InvalidInput(
            f"Refusing to serve on {host}, which is not a loopback address, without a token: "
            "set AOAI_BATCH_HTTP_TOKEN (clients then send 'Authorization: Bearer <token>'), or sign-in "
            "(AOAI_BATCH_OAUTH_ISSUER and AOAI_BATCH_OAUTH_AUDIENCE), or bind 127.0.0.1."
        )


def http_app(server: MCPServer[Any], *, host: str, token: str | None, stateless: bool = False) -> ASGIApp:
    """The ASGI app for `host`; a non-loopback address with neither a token nor sign-in is refused.

    `stateless` (`serve --stateless`): handshake-era (2025-11-25) requests keep no session either, so any
    replica behind a round-robin balancer answers any request (2026-07-28 requests never need one)."""
    require_guard(host, token=token, sign_in=server.settings.auth is not None)
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=host, transport_security=security_for(host), stateless_http=stateless
    )
    scopes = server.settings.auth.required_scopes if server.settings.auth else None
    if scopes:
        app = ChallengeScopes(app, scopes)
    return BearerToken(app, token) if token else app


class ChallengeScopes:
    """Adds `scope="..."` to the SDK's 401 and 403 challenges, as MCP's authorization spec asks: a client
    signs in for the scopes the challenge names (RFC 6750 §3), else for all the metadata lists."""

    def __init__(self, app: ASGIApp, scopes: list[str]) -> None:
        self.app = app
        self._scope = (' scope="' + " ".join(scopes) + '"').encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_scope(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                message = {**message, "headers": [self._with_scope(name, value) for name, value in message["headers"]]}
            await send(message)

        await self.app(scope, receive, send_with_scope)

    def _with_scope(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        if name.lower() == b"www-authenticate" and value.startswith(b"Bearer ") and b" scope=" not in value:
            return name, value + b"," + self._scope
        return name, value


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


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` (0: a free port), as uvicorn binds one.

    Raises:
        InvalidInput: the address cannot be bound (in use, or not this machine's).
    """
    bare = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bare, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput(f"Cannot listen on {host} port {port}: {exc.strerror or exc}.") from exc
    return sock


async def serve_http(
    app_for: Callable[[str], Awaitable[ASGIApp]],
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    public_url: str | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM; `on_ready` gets the URL once the socket is bound.

    `app_for` gets the URL clients reach the server at (`public_url`, or this host and the bound port):
    signed-in users' tokens are checked against it, so the port is bound before the app is built.
    """
    sock = listening_socket(host, port)
    try:
        app = await app_for(public_url or url_for(host, sock.getsockname()[1]))
        config = uvicorn.Config(app, host=host.strip("[]"), port=port, log_level="warning", lifespan="on")
        await Uvicorn(config, on_ready).serve(sockets=[sock])
    finally:
        sock.close()
