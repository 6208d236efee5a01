"""Injected API faults reach the real SDK as the errors Azure would cause."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import openai
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.emulator.faults import Faults
from aoai_batch.settings import EmulatorSettings
from tests.support.clients import azure_client, v1_client
from tests.support.http_server import EmulatorServer, ServerThread


def serve(tmp_path: Path, faults: str) -> Iterator[str]:
    settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, key="k", faults=faults)
    emulator = Emulator(settings, clock=FakeClock())
    with ServerThread(emulator.app, emulator) as server:
        yield server.url


@pytest.fixture
def faulty_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from serve(tmp_path, request.param)


@pytest.mark.parametrize(
    ("faulty_url", "error", "status"),
    [
        ("429:1,retry_after:7", openai.RateLimitError, 429),
        ("500:1", openai.InternalServerError, 500),
        ("503:1", openai.InternalServerError, 503),
    ],
    indirect=["faulty_url"],
)
async def test_status_faults_reach_the_sdk_as_status_errors(
    faulty_url: str, error: type[openai.APIStatusError], status: int
) -> None:
    with anyio.fail_after(20):
        async with azure_client(faulty_url, "k") as client:
            with pytest.raises(error) as caught:
                await client.batches.list()
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"]
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("faulty_url", ["drop:1"], indirect=True)
async def test_a_dropped_connection_is_a_connection_error(faulty_url: str) -> None:
    with anyio.fail_after(20):
        async with azure_client(faulty_url, "k") as client:
            with pytest.raises(openai.APIConnectionError):
                await client.batches.list()


@pytest.mark.parametrize("faulty_url", ["latency_ms:20"], indirect=True)
async def test_latency_delays_but_answers(faulty_url: str) -> None:
    with anyio.fail_after(20):
        async with v1_client(f"{faulty_url}/openai/v1", "k") as client:
            page = await client.batches.list()
    assert page.data == []


async def test_a_dropped_connection_in_process_is_a_connection_error(tmp_path: Path) -> None:
    settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, faults="drop:1")
    with anyio.fail_after(20):
        async with (
            Emulator(settings, clock=FakeClock()) as emulator,
            azure_client("http://emu", emulator.key, emulator.transport()) as client,
        ):
            with pytest.raises(openai.APIConnectionError):
                await client.batches.list()


@pytest.mark.parametrize("text", ["429", "teapot:1", "429:2", "latency_ms:x", "retry_after:-1"])
def test_bad_fault_settings_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message is for people; the type is the contract)
        Faults.parse(text)


def test_fault_shares_are_drawn_in_proportion() -> None:
    faults = Faults.parse("429:0.25,503:0.25,drop:0.25", seed=3)
    picks = [faults.pick() for _ in range(4000)]
    for kind in ("429", "503", "drop", None):
        assert 800 < picks.count(kind) < 1200


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    """This module's `emulator_server` drops every connection."""
    return EmulatorSettings(home=tmp_path / "emulator", time_scale=1.0, key="test-key", faults="drop:1")


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of uvicorn (whose loggers do not propagate to the root) and of the emulator."""
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    caplog.set_level(logging.DEBUG, logger="aoai_batch.emulator")
    try:
        yield caplog
    finally:
        uvicorn_logger.removeHandler(caplog.handler)


async def test_a_dropped_connection_is_one_log_line_not_a_traceback(
    emulator_server: EmulatorServer, server_log: pytest.LogCaptureFixture
) -> None:
    with anyio.fail_after(20):
        async with azure_client(emulator_server.url, emulator_server.key) as client:
            with pytest.raises(openai.APIConnectionError):
                await client.batches.list()

    records = [r for r in server_log.records if r.name.startswith(("uvicorn", "aoai_batch"))]
    assert [r for r in records if r.exc_info or r.levelno >= logging.ERROR] == []
    dropped = [r for r in records if r.name == "aoai_batch.emulator"]
    assert len(dropped) == 1
    assert "/openai/batches" in dropped[0].getMessage()
