"""Every error of the tree reaches an MCP client with its kind, in `_meta`, through a real in-memory `Client`.

The tool here only raises; what is under test is the edge every tool shares: `expected_errors` (the advice)
and `KindedTool` (the kind), as `tools.all_tools()` builds them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import get_args

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import TextContent, ToolAnnotations

from aoai_batch.errors import (
    ERROR_KEY,
    AuthenticationFailed,
    BadPriceFile,
    BatchToolError,
    ConnectionFailed,
    CostAboveLimit,
    ErrorDetails,
    ErrorKind,
    FileInTheWay,
    InvalidBatchFile,
    InvalidInput,
    InvalidRequest,
    NoSpace,
    NotAFileId,
    NotConfigured,
    NotFound,
    NotReady,
    NotWritable,
    PathNotAllowed,
    RateLimited,
    RegistryLocked,
    ServiceUnavailable,
    SignInFailed,
    UnknownDeployment,
)
from aoai_batch.models import Batch
from tests.support.mcp import MODES, error_details
from tools.deps import advice, expected_errors
from tools.registry import ToolSpec, build_tools

# each error of the tree, and what a client must find under _meta[ERROR_KEY]
LEAVES: list[tuple[BatchToolError, ErrorDetails]] = [
    (InvalidInput("The path is empty."), {"kind": "invalid_input"}),
    (PathNotAllowed("'../x' contains '..'."), {"kind": "invalid_input"}),
    (FileInTheWay(Path("/w/out.jsonl")), {"kind": "conflict"}),
    (InvalidBatchFile("/w/in.jsonl has issues (bom).", path=Path("/w/in.jsonl")), {"kind": "invalid_input"}),
    (NotConfigured("The openai provider needs a key.", setting="OPENAI_API_KEY"), {"kind": "not_configured"}),
    (UnknownDeployment("gpt-5", ["gpt-4o-mini"]), {"kind": "invalid_input"}),
    (BadPriceFile("The price file /w/p.toml: no [models.NAME].", path="/w/p.toml"), {"kind": "not_configured"}),
    (CostAboveLimit("The batch would cost up to USD 3.", max_cost=1, estimate=3), {"kind": "over_budget"}),
    (NotAFileId("in.jsonl is a local file path.", value="in.jsonl", given="path"), {"kind": "invalid_input"}),
    (NotWritable("Cannot write into /w.", folder="/w"), {"kind": "invalid_input"}),
    (NotFound("No batch batch_x.", missing="batch"), {"kind": "not_found"}),
    (NotReady("Batch b1 is still in_progress.", batch_id="b1"), {"kind": "not_ready"}),
    (
        InvalidRequest("The service rejected the request: too many tokens.", code="token_limit_exceeded"),
        {"kind": "rejected", "code": "token_limit_exceeded"},
    ),
    (InvalidRequest("The service rejected the request: HTTP 400"), {"kind": "rejected"}),
    (AuthenticationFailed("res.openai.azure.com refused the key."), {"kind": "auth"}),
    (SignInFailed("Could not sign in with Entra ID."), {"kind": "auth"}),
    (RateLimited("Rate limited: too many requests", retry_after=30), {"kind": "rate_limited", "retry_after": 30}),
    (RateLimited("Quota exhausted."), {"kind": "rate_limited"}),
    (ServiceUnavailable("Server error at res.openai.azure.com (HTTP 503)."), {"kind": "unavailable"}),
    (ConnectionFailed("Could not reach res.openai.azure.com."), {"kind": "unavailable"}),
    (NoSpace("Cannot write into /w: No space left on device.", folder="/w"), {"kind": "no_space"}),
    (RegistryLocked("The job registry is locked by another process."), {"kind": "unavailable"}),
]


def tree(root: type[BatchToolError] = BatchToolError) -> Iterator[type[BatchToolError]]:
    for child in root.__subclasses__():
        yield child
        yield from tree(child)


async def fail(case: int) -> Batch:
    """Raise the error of LEAVES[case]."""
    with expected_errors():
        raise LEAVES[case][0]
    raise AssertionError("expected_errors re-raises")


async def crash() -> Batch:
    """Fail as a bug does."""
    raise RuntimeError("a secret detail of the crash")


ANNOTATIONS = ToolAnnotations(read_only_hint=True)


@pytest.fixture
def server() -> MCPServer[None]:
    specs = [ToolSpec(fail, "Fail", ANNOTATIONS), ToolSpec(crash, "Crash", ANNOTATIONS)]
    return MCPServer("kinds", tools=build_tools(specs))


def text_of(content: Sequence[object]) -> str:
    return " ".join(block.text for block in content if isinstance(block, TextContent))


def test_every_error_class_is_in_the_table_and_every_kind_is_used() -> None:
    assert {type(error) for error, _ in LEAVES} == set(tree())
    assert {details["kind"] for _, details in LEAVES} == set(get_args(ErrorKind))


@pytest.mark.parametrize("case", range(len(LEAVES)), ids=[type(error).__name__ for error, _ in LEAVES])
async def test_each_error_reaches_the_client_with_its_kind(server: MCPServer[None], case: int) -> None:
    error, expected = LEAVES[case]
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("fail", {"case": case})
    assert error_details(result) == expected
    assert text_of(result.content) == f"Error executing tool fail: {advice(error)}"  # the text as it always was


@pytest.mark.parametrize("mode", MODES)
async def test_the_kind_reaches_clients_of_both_protocol_eras(server: MCPServer[None], mode: str) -> None:
    not_ready = next(case for case, (error, _) in enumerate(LEAVES) if isinstance(error, NotReady))
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("fail", {"case": not_ready})
    assert error_details(result) == {"kind": "not_ready"}


async def test_arguments_that_do_not_fit_the_schema_are_invalid_input(server: MCPServer[None]) -> None:
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("fail", {"case": "not a number"})
    assert error_details(result) == {"kind": "invalid_input"}


async def test_a_crash_has_no_kind_and_keeps_its_detail_on_the_server(server: MCPServer[None]) -> None:
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("crash", {})
    assert result.is_error
    assert ERROR_KEY not in (result.meta or {})  # a bug, not something the caller can act on
    assert text_of(result.content) == "Error executing tool crash"


def test_a_new_branch_of_the_tree_must_declare_its_kind() -> None:
    with pytest.raises(TypeError, match="must declare its kind"):

        class Forgot(BatchToolError):
            pass

    class StillMissing(NotFound):  # a leaf under a branch does what its branch does, unless it says otherwise
        pass

    class Busy(BatchToolError, kind="unavailable"):
        pass

    assert StillMissing("x").details() == {"kind": "not_found"}
    assert Busy("x").details() == {"kind": "unavailable"}
