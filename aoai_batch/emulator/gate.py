"""What every API request passes first: the key, the api-version, and the injected faults."""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aoai_batch.emulator.faults import ConnectionDropped
from aoai_batch.emulator.wire import Style, error_json

if TYPE_CHECKING:
    from aoai_batch.emulator.operations import Operations

logger = logging.getLogger("aoai_batch.emulator")
RouteFlavor = Literal["azure", "azure_v1", "openai"]
# Dated versions from the first with batches on; `preview`/`latest`/`v1` as the v1 API accepts them.
DATED_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(-preview)?$")
FIRST_BATCH_VERSION = "2024-07-01"
UNDATED_VERSIONS = frozenset({"v1", "preview", "latest"})


def flavor_of(path: str) -> RouteFlavor | None:
    if path.startswith("/openai/v1/"):
        return "azure_v1"
    if path.startswith("/openai/"):
        return "azure"
    if path.startswith("/v1/"):
        return "openai"
    return None


def style_for(flavor: RouteFlavor, wire_format: str) -> Style:
    if flavor == "openai":
        return "openai"
    return "legacy" if wire_format == "legacy" else "standard"


def version_problem(query: bytes) -> str | None:
    """Why the api-version of a dated Azure route is missing or unsupported, or None."""
    values = parse_qs(query.decode("latin-1")).get("api-version")
    if not values:
        return "The api-version query parameter is required, e.g. ?api-version=2024-10-21."
    version = values[0]
    match = DATED_VERSION.match(version)
    if version in UNDATED_VERSIONS or (match and match.group(1) >= FIRST_BATCH_VERSION):
        return None
    return f"api-version {version!r} is not supported for files and batches; use 2024-10-21 or later."


class Gate:
    """ASGI middleware: checks the key and the api-version, then applies latency and faults."""

    def __init__(self, app: ASGIApp, operations: Operations) -> None:
        self.app = app
        self.operations = operations
        configured = operations.settings.key
        self.key = configured.get_secret_value().encode() if configured else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        flavor = flavor_of(scope["path"]) if scope["type"] == "http" else None
        if flavor is None:
            await self.app(scope, receive, send)
            return
        style = style_for(flavor, self.operations.settings.format)
        headers = dict(scope["headers"])
        if not self._authorized(headers):
            message = "Access denied: send a valid key in the api-key header or as Authorization: Bearer."
            await _send_error(send, 401, "unauthorized", message, style)
            return
        if flavor == "azure":
            problem = version_problem(scope.get("query_string", b""))
            if problem:
                await _send_error(send, 400, "invalidPayload", problem, style)
                return
        faults = self.operations.faults
        if faults.latency_ms:
            await anyio.sleep(faults.latency_ms / 1000)
        fault = faults.pick()
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "drop":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
            raise ConnectionDropped("connection dropped by the emulator's fault injection")
        else:
            await self._send_fault(send, int(fault), style)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        sent = headers.get(b"api-key")
        if sent is None:
            scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
            sent = token.strip() if scheme.lower() == b"bearer" else None
        if not sent:
            return False
        return self.key is None or hmac.compare_digest(sent, self.key)

    async def _send_fault(self, send: Send, status: int, style: Style) -> None:
        retry = self.operations.faults.retry_after
        # Azure asks for a wait on 429 and 503 alike; the SDK honours retry-after-ms before retry-after.
        extra = [(b"retry-after", f"{retry:g}".encode()), (b"retry-after-ms", str(int(retry * 1000)).encode())]
        if status == 429:
            message = f"Rate limit reached (injected by the emulator). Retry after {retry:g} seconds."
            await _send_error(send, 429, "tooManyRequests", message, style, extra)
        elif status == 503:
            message = "The service is temporarily unavailable (injected by the emulator); retry later."
            await _send_error(send, 503, "serviceUnavailable", message, style, extra)
        else:
            message = "Internal error (injected by the emulator); retry."
            await _send_error(send, status, "internalFailure", message, style)


async def _send_error(
    send: Send, status: int, code: str, message: str, style: Style, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(error_json(status, code, message, None, style))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", str(uuid.uuid4()).encode()),
        *(extra or []),
    ]
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


# What uvicorn logs (as an error) when an app ends without finishing its response, as a drop does.
UNFINISHED = "ASGI callable returned without completing response."
_dropped: ContextVar[bool] = ContextVar("aoai_emulator_dropped", default=False)


class _DropNoted(logging.Filter):
    """Keeps uvicorn's error about an unfinished response out of the log when it is an injected drop."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_dropped.get() and record.msg == UNFINISHED)


DROP_NOTED = _DropNoted()


class QuietDrops:
    """The app as a server serves it: an injected drop is one log line and a cut connection, not a traceback.

    Raised through uvicorn, ConnectionDropped would be logged as 'Exception in ASGI application' with its
    traceback. Here the app returns instead (uvicorn then closes the connection, as a drop should) and the
    emulator says what happened; the in-process transport uses the bare app, where the exception is its cue.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ConnectionDropped:
            logger.warning(
                "Dropped the connection of %s %s (a fault injected by AOAI_EMULATOR_FAULTS).",
                scope.get("method"),
                scope.get("path"),
            )
            logging.getLogger("uvicorn.error").addFilter(DROP_NOTED)  # once: the same filter is added only once
            _dropped.set(True)  # seen by uvicorn's check after this returns, in the same task
