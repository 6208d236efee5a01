"""Fixtures and helpers for tests that talk to the MCP server with a real client (imported by conftests).

The server runs on the in-process emulator of `tests/conftest.py`, whose clock only moves when a test
advances it; the watcher polls every few milliseconds so a change shows up as soon as the clock moves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult

from aoai_batch.emulator import Emulator
from aoai_batch.errors import ERROR_KEY, ErrorDetails, ErrorKind
from aoai_batch.settings import Settings
from server.app import build_server
from server.state import AppState

MODES = ["legacy", "auto"]
WAIT = 20.0  # seconds any test may wait for something to arrive before it fails
POLL = 0.02


CLOUD_SETTINGS = (
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AOAI_BATCH_PROVIDER",
    "AOAI_BATCH_AUTH",
    "AZURE_OPENAI_API_VERSION",
    "OPENAI_API_VERSION",
)


def isolate_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLI run on the embedded emulator with its home and workspace in tmp_path, whatever the shell has set."""
    for name in CLOUD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AOAI_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AOAI_BATCH_WORKSPACE", str(tmp_path))
    return tmp_path / "home"


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


def request_line(n: int, deployment: str = "gpt-4o-mini") -> bytes:
    body = {"model": deployment, "messages": [{"role": "user", "content": f"Question {n}?"}], "max_tokens": 20}
    return orjson.dumps({"custom_id": f"task-{n}", "method": "POST", "url": "/chat/completions", "body": body})


def write_batch_file(folder: Path, name: str = "input.jsonl", requests: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"\n".join(request_line(n) for n in range(requests)) + b"\n")
    return path


def structured(result: CallToolResult) -> dict[str, Any]:
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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def workspace(settings: Settings) -> Path:
    folder = settings.workspace_dirs[0]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def app(settings: Settings, emulator: Emulator) -> MCPServer[AppState]:
    return build_server(settings, transport=emulator.transport(), first_poll_delay=0)


@pytest.fixture
def batch_file(workspace: Path) -> Path:
    return write_batch_file(workspace)


Advance = Callable[[float], None]
