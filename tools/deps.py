"""What the tools need from the server, as protocols (tools never import `server`), and shared plumbing.

The server's lifespan state satisfies `ToolDeps`; a tool reaches it through its `Context`. Expected
failures from `aoai_batch` become tool errors here, with what to do next (`advice`) and their kind
(`error_result`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio
import pydantic_core
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ListRootsRequest, ListRootsResult, TextContent
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError

from aoai_batch.errors import (
    ERROR_KEY,
    AuthenticationFailed,
    BadPriceFile,
    BatchToolError,
    ConnectionFailed,
    CostAboveLimit,
    ErrorDetails,
    FileInTheWay,
    InvalidBatchFile,
    NotAFileId,
    NotConfigured,
    NotFound,
    NotReady,
    RateLimited,
    ServiceUnavailable,
    SignInFailed,
    with_advice,
)
from aoai_batch.limits import MAX_WAIT_SECONDS
from aoai_batch.models import Batch, ProgressFn
from aoai_batch.runs.models import Run, RunResultsSummary
from aoai_batch.settings import Settings
from tools.workspace import Workspace, path_from_uri

if TYPE_CHECKING:  # the service module imports `openai`; start-up time keeps it out of this import path
    from aoai_batch.runs.service import RunService
    from aoai_batch.service import BatchService

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 20_000
"""No tool result's text may exceed about this; large data goes to files."""
ROOTS_TIMEOUT_SECONDS = 5.0


class Services(Protocol):
    async def get(self) -> BatchService: ...


class Runs(Protocol):
    async def get(self) -> RunService: ...


class RunEvents(Protocol):
    async def started(self, run: Run) -> None: ...
    async def observed(self, run: Run) -> bool: ...
    async def results_fetched(self, summary: RunResultsSummary) -> None: ...


class WatcherEvents(Protocol):
    async def created(self, batch: Batch) -> None: ...
    async def observed(self, batch: Batch) -> bool: ...
    async def results_fetched(self, batch: Batch) -> None: ...


class ToolDeps(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def services(self) -> Services: ...
    @property
    def workspace(self) -> Workspace: ...
    @property
    def watcher(self) -> WatcherEvents: ...
    @property
    def runs(self) -> Runs: ...
    @property
    def run_watcher(self) -> RunEvents: ...


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
    return [path for root in result.roots if (path := path_from_uri(str(root.uri))) is not None]


def progress(ctx: Context[Any, Any]) -> ProgressFn:
    """Report progress to the caller (a no-op when it did not ask for progress)."""
    return ctx.report_progress


def _in_env(setting: str) -> str:
    return f"{setting} in this server's environment (its `env` in the MCP client's configuration), then restart it"


def _sign_in(exc: SignInFailed) -> str:
    return (
        "Run `az login` where the server runs (or give it a managed identity), "
        f"or set {_in_env('AZURE_OPENAI_API_KEY')}."
    )


def _refused(exc: AuthenticationFailed) -> str:
    if exc.auth == "entra":
        return "Give the signed-in identity the 'Cognitive Services OpenAI User' role on the resource, " + (
            f"or set {_in_env('AZURE_OPENAI_API_KEY')}."
        )
    return f"Check the key: set {_in_env(exc.key_setting)}."


def _rate_limited(exc: RateLimited) -> str | None:
    if exc.says_when:
        return None  # the service's own message already says when
    if exc.retry_after is not None:
        return f"Retry after {exc.retry_after:.0f} s."
    return "Wait a minute and retry; Azure counts enqueued tokens against the deployment's batch quota."


def _not_found(exc: NotFound) -> str | None:
    if exc.missing == "batch":
        return "Call list_batches to see the batches this server knows."
    if exc.missing == "file":
        return "Call list_files to see the uploaded files; a local file must be uploaded (upload_file) first."
    return None


def _not_ready(exc: NotReady) -> str | None:
    if exc.batch_id is None:
        return None
    return f"Call get_batch with wait_seconds (up to {MAX_WAIT_SECONDS}) to wait for it, or come back later."


def _not_a_file_id(exc: NotAFileId) -> str:
    if exc.given == "path":
        return "Upload it with upload_file first, then call create_batch with the file id it returns."
    return "Call get_batch to see it; create_batch needs an uploaded file's id (list_files shows them)."


def _over_budget(exc: CostAboveLimit) -> str:
    if exc.estimate is None:
        return "Call create_batch (or start_run) without max_cost to start it anyway."
    return (
        "Raise max_cost, or make the job smaller (fewer requests, a lower max_tokens, a cheaper deployment) "
        "and upload it (or start the run) again."
    )


def _unreachable(exc: ConnectionFailed) -> str | None:
    if exc.endpoint_setting is None:
        return None  # not an address anyone set (the embedded emulator, a server shutting down)
    return f"Check {exc.endpoint_setting} and the network, then try again."


# The first row whose type matches gives the one piece of advice (subclasses before their bases).
_ADVICE: list[tuple[type[Any], Callable[[Any], str | None]]] = [
    (FileInTheWay, lambda exc: "Pass overwrite=true to replace existing files, or choose another name."),
    (InvalidBatchFile, lambda exc: "Call validate_batch_file on it for every issue, fix them, and upload again."),
    (BadPriceFile, lambda exc: f"Fix that file, or unset {_in_env(exc.setting)}."),
    (NotConfigured, lambda exc: f"Set {_in_env(exc.setting)}."),
    (CostAboveLimit, _over_budget),
    (NotAFileId, _not_a_file_id),
    (NotFound, _not_found),
    (NotReady, _not_ready),
    (SignInFailed, _sign_in),
    (AuthenticationFailed, _refused),
    (RateLimited, _rate_limited),
    (ServiceUnavailable, lambda exc: "Try again in a minute."),
    (ConnectionFailed, _unreachable),
]


def advice(exc: BatchToolError) -> str:
    """The error's own message plus what to do next, in the words of tools (said once)."""
    step = next((give(exc) for kind, give in _ADVICE if isinstance(exc, kind)), None)
    return with_advice(exc, step)


@contextmanager
def expected_errors() -> Iterator[None]:
    """Turn the core's expected failures into tool errors the model can act on (`error_result` adds the kind)."""
    try:
        yield
    except BatchToolError as exc:
        raise ToolError(advice(exc)) from exc


def error_result(tool: str, error: ToolError) -> CallToolResult | None:
    """An anticipated tool error as the client gets it: the SDK's text, and its kind for programs.

    The kind goes in `_meta` under ERROR_KEY, not in `structuredContent`: clients may check structured
    content against the tool's outputSchema (the TypeScript SDK does whenever it is present), and an error
    is not the tool's output; `_meta` is the protocol's place for extras, and every SDK's result model
    keeps it. The text stays as it was, for the model and the person: no tag for anyone to parse.
    None: not an error this server knows the kind of (the SDK reports it as before).
    """
    cause = error.__cause__
    while cause is not None and not isinstance(cause, BatchToolError | ValidationError):
        cause = cause.__cause__
    if isinstance(cause, ValidationError):  # the arguments do not fit the input schema
        fields = sorted({".".join(str(part) for part in err["loc"]) for err in cause.errors()})
        logger.info("Tool %r rejected arguments: %r", tool, fields)  # names only: the values are the caller's
        details: ErrorDetails = {"kind": "invalid_input"}
    elif isinstance(cause, BatchToolError):
        logger.info("Tool %r failed (%s): %r", tool, cause.kind, str(error))
        details = cause.details()
    else:
        return None
    text = TextContent(type="text", text=str(error))
    return CallToolResult(content=[text], is_error=True, _meta={ERROR_KEY: details})


def result_chars(result: object) -> int:
    """The size of a result as the client will see it (the SDK sends it as indented JSON text)."""
    return len(pydantic_core.to_json(result, indent=2))
