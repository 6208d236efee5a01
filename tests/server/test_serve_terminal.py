"""`serve` as a person meets it in a terminal: what it says on stderr, and Ctrl-C, in real subprocesses."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import orjson
import pytest
from anyio.abc import ByteReceiveStream, Process
from mcp import Client

from tests.support.cli import isolate_cli
from tests.support.paths import REPO_ROOT

WAIT = 60.0  # seconds: start-up imports the SDKs; a stop must come long before this
SERVE = [sys.executable, "-m", "server", "serve"]
URL = re.compile(r"http://\S+/mcp\b")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_cli(tmp_path, monkeypatch)


@asynccontextmanager
async def serving(*extra: str, stdin: int = subprocess.PIPE) -> AsyncIterator[Process]:
    process = await anyio.open_process([*SERVE, *extra], stdin=stdin, cwd=REPO_ROOT)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


async def read_line(stream: ByteReceiveStream | None, buffer: bytearray) -> str:
    assert stream is not None
    while b"\n" not in buffer:
        buffer.extend(await stream.receive())
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


async def read_rest(stream: ByteReceiveStream | None, buffer: bytearray) -> str:
    assert stream is not None
    try:
        while True:
            buffer.extend(await stream.receive())
    except anyio.EndOfStream:
        return buffer.decode()


async def interrupt(process: Process) -> int:
    process.send_signal(signal.SIGINT)
    return await process.wait()


async def test_in_a_terminal_serve_says_what_it_is_in_one_line_and_ctrl_c_ends_it_with_0() -> None:
    controller, terminal = pty.openpty()
    try:
        with anyio.fail_after(WAIT):
            async with serving(stdin=terminal) as process:
                err = bytearray()
                hint = await read_line(process.stderr, err)
                code = await interrupt(process)
                rest = await read_rest(process.stderr, err)
                out = await read_rest(process.stdout, bytearray())
    finally:
        os.close(controller)
        os.close(terminal)
    assert code == 0
    assert "MCP" in hint
    assert "stdio" in hint or "stdin" in hint
    assert "claude mcp add" in hint
    assert rest == ""  # one line, and no traceback after it
    assert out == ""  # stdout is the protocol's


async def test_under_a_client_serve_says_nothing_and_ctrl_c_ends_it_with_0() -> None:
    with anyio.fail_after(WAIT):
        async with serving() as process:
            assert process.stdin is not None
            await process.stdin.send(orjson.dumps(INITIALIZE) + b"\n")
            answer = orjson.loads(await read_line(process.stdout, bytearray()))
            code = await interrupt(process)  # stdin still open, as a client that keeps it open leaves it
            err = await read_rest(process.stderr, bytearray())
    assert answer["id"] == 1
    assert "serverInfo" in answer["result"]
    assert code == 0
    assert "Traceback" not in err
    assert "claude mcp add" not in err


async def test_http_serve_prints_the_url_with_the_real_port_and_a_client_connects_to_it() -> None:
    with anyio.fail_after(WAIT):
        async with serving("--transport", "http", "--port", "0", stdin=subprocess.DEVNULL) as process:
            err = bytearray()
            line = await read_line(process.stderr, err)
            found = URL.search(line)
            assert found is not None, line
            url = found.group(0)
            async with Client(url, mode="legacy") as client:
                tools = await client.list_tools()
            code = await interrupt(process)
            rest = await read_rest(process.stderr, err)
    assert not url.endswith(":0/mcp")
    assert "validate_batch_file" in {tool.name for tool in tools.tools}
    assert code == 0
    assert "Traceback" not in rest
