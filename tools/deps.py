"""What the tools need from the server, as protocols (tools never import `server`), and shared plumbing.

The server's lifespan state satisfies `ToolDeps`; a tool reaches it through its `Context`. Expected
failures from `aoai_batch` become tool errors here, with what to do next.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import unquote, urlparse

import anyio
import pydantic_core
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import ListRootsRequest, ListRootsResult
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from aoai_batch.errors import (
    AuthenticationFailed,
    BatchToolError,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from aoai_batch.models import Batch, ProgressFn
from aoai_batch.settings import Settings

if TYPE_CHECKING:  # the service module imports `openai`; start-up time keeps it out of this import path
    from aoai_batch.service import BatchService

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 20_000
"""No tool result's text may exceed about this; large data goes to files."""
ROOTS_TIMEOUT_SECONDS = 5.0


class Services(Protocol):
    async def get(self) -> BatchService: ...


class Paths(Protocol):
    @property
    def default_dir(self) -> Path: ...
    def resolve(self, path: str, *, roots: Iterable[Path] = (), must_exist: bool = False) -> Path: ...
    def output_path(self, path: str | None, default_name: str, *, roots: Iterable[Path] = ()) -> Path: ...
    def output_dir(self, path: str | None, default_name: str, *, roots: Iterable[Path] = ()) -> Path: ...


class Watcher(Protocol):
    async def created(self, batch: Batch) -> None: ...
    async def observed(self, batch: Batch) -> bool: ...
    async def results_fetched(self, batch: Batch) -> None: ...


class ToolDeps(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def services(self) -> Services: ...
    @property
    def workspace(self) -> Paths: ...
    @property
    def watcher(self) -> Watcher: ...


def deps(ctx: Context[Any, Any]) -> ToolDeps:
    return cast(ToolDeps, ctx.request_context.lifespan_context)


async def client_roots(ctx: Context[Any, Any]) -> list[Path]:
    """The client's MCP roots as local folders (handshake-era clients that declare roots; else none)."""
    request = ctx.request_context
    capabilities = ctx.client_capabilities
    if request.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS or not capabilities or not capabilities.roots:
        return []
    try:
        with anyio.fail_after(ROOTS_TIMEOUT_SECONDS):
            result = await request.session.send_request(ListRootsRequest(), ListRootsResult)
    except (MCPError, TimeoutError) as exc:
        logger.info("could not list the client's roots: %s", exc)
        return []
    return [path for root in result.roots if (path := _root_path(str(root.uri))) is not None]


def _root_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parsed.path))


def progress(ctx: Context[Any, Any]) -> ProgressFn:
    """Report progress to the caller (a no-op when it did not ask for progress)."""
    return ctx.report_progress


_NEXT_STEP: list[tuple[type[BatchToolError], str]] = [
    (NotFound, "Call list_batches to see the batches this server knows."),
    (AuthenticationFailed, "Check AZURE_OPENAI_API_KEY, or sign in for Entra ID (az login), then restart the server."),
    (RateLimited, "Wait and try again; Azure counts enqueued tokens against the deployment's batch quota."),
    (ServiceUnavailable, "The service had a problem; try again in a minute."),
    (ConnectionFailed, "Check AZURE_OPENAI_ENDPOINT and the network, then try again."),
]


def advice(exc: BatchToolError) -> str:
    """The error's own message plus what to do next."""
    text = str(exc)
    if isinstance(exc, RateLimited) and exc.retry_after:
        return f"{text} Retry after {exc.retry_after:.0f} s."
    if isinstance(exc, InvalidRequest) and exc.code and exc.code not in text:
        text = f"{text} (code {exc.code})"
    for kind, step in _NEXT_STEP:
        if isinstance(exc, kind):
            return f"{text} {step}"
    return text


@contextmanager
def expected_errors() -> Iterator[None]:
    """Turn the core's expected failures into tool errors the model can act on."""
    try:
        yield
    except BatchToolError as exc:
        raise ToolError(advice(exc)) from exc


def result_chars(result: object) -> int:
    """The size of a result as the client will see it (the SDK sends it as indented JSON text)."""
    return len(pydantic_core.to_json(result, indent=2))
