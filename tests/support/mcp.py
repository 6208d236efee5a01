"""The MCP harness: a server on the in-process emulator, reached with a real `mcp.Client`.

The server runs on the emulator of the `emulator` fixture, whose clock only moves when a test advances it;
the watcher polls every few milliseconds so a change shows up as soon as the clock moves. The fixtures
(`settings`, `workspace`, `app`, `batch_file`) are in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from mcp import Client
from mcp_types import CallToolResult

from aoai_batch.errors import ERROR_KEY, ErrorDetails, ErrorKind
from aoai_batch.settings import Settings

MODES = ["legacy", "auto"]
WAIT = 20.0  # seconds any test may wait for something to arrive before it fails
POLL = 0.02


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "workspace": str(tmp_path / "ws"),
        "endpoint": None,
        "api_key": "test-key",
        "provider": "emulator",
        "poll_seconds": POLL,
    }
    values.update(overrides)
    return Settings(**values)


def structured(result: CallToolResult) -> dict[str, Any]:
    """A tool's structured answer; fails the test on a tool error."""
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_details(result: CallToolResult) -> ErrorDetails:
    """What a failed tool call tells programs (its `_meta`); a call that did not fail fails the test."""
    assert result.is_error, result.structured_content
    assert result.structured_content is None  # an error is not the tool's output: nothing to check against it
    details = (result.meta or {}).get(ERROR_KEY)
    assert isinstance(details, dict), result.meta
    return cast(ErrorDetails, details)


def error_kind(result: CallToolResult) -> ErrorKind:
    return error_details(result)["kind"]


async def start_batch(client: Client, path: Path, **create: object) -> dict[str, Any]:
    """Uploads `path` (in the workspace) and creates a batch of it with the tools; create_batch's answer."""
    uploaded = structured(await client.call_tool("upload_file", {"path": path.name}))
    file_id = uploaded["file"]["id"]
    return structured(await client.call_tool("create_batch", {"input_file_id": file_id, **create}))
