"""The suite's fixtures: the emulator with a hand-moved clock (in-process or over loopback HTTP) and the MCP
server on it. Helpers are in tests/support/; this file holds only fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp.server.mcpserver import MCPServer

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import EmulatorSettings, Settings
from server.app import build_server
from server.state import AppState
from tests.support.batch_files import write_workspace_batch
from tests.support.http_server import EmulatorServer, ServerThread
from tests.support.mcp import make_settings
from tests.support.postgres import PostgresServer, bindir_or_skip


@pytest.fixture
def anyio_backend() -> str:
    """The event loop of every async test and fixture (anyio's plugin, `anyio_mode = "auto"`)."""
    return "asyncio"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    """Emulator settings in a temporary home, with time_scale 1 so clock seconds are emulated seconds."""
    return EmulatorSettings(home=tmp_path / "emulator", time_scale=1.0, key="test-key")


@pytest.fixture
async def emulator(emulator_settings: EmulatorSettings, fake_clock: FakeClock) -> AsyncIterator[Emulator]:
    """An in-process emulator, entered; reach it with `emulator.transport()`."""
    async with Emulator(emulator_settings, clock=fake_clock) as running:
        yield running


@pytest.fixture
def emulator_server(emulator_settings: EmulatorSettings, fake_clock: FakeClock) -> Iterator[EmulatorServer]:
    """A real HTTP emulator on 127.0.0.1; usable from sync and async tests alike."""
    emulator = Emulator(emulator_settings, clock=fake_clock)
    with ServerThread(emulator.app, emulator) as running:
        yield EmulatorServer(running.url, emulator.key, emulator, fake_clock)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The MCP server's settings: the emulator, a home and a workspace in tmp_path."""
    return make_settings(tmp_path)


@pytest.fixture
def workspace(settings: Settings) -> Path:
    folder = settings.workspace_dirs[0]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def app(settings: Settings, emulator: Emulator) -> MCPServer[AppState]:
    """The MCP server on the in-process emulator; talk to it with `mcp.Client(app)`."""
    return build_server(settings, transport=emulator.transport(), first_poll_delay=0)


@pytest.fixture
def batch_file(workspace: Path) -> Path:
    return write_workspace_batch(workspace)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skipped, or failed under REQUIRE_POSTGRES, when not installed)."""
    server = PostgresServer(bindir_or_skip()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database of its own for this test."""
    return postgres_server.new_database()
