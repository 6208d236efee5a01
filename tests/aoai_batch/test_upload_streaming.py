"""An upload streams the file from disk: the SDK gets an open file, never the file's bytes in one piece."""

from __future__ import annotations

import functools
import gc
import warnings
from pathlib import Path

import anyio
import httpx2
from pydantic import SecretStr

from aoai_batch.client import BatchClient, Connection

MEGABYTE = 1 << 20


class RecordingTransport(httpx2.AsyncBaseTransport):
    """Reads each request body as the transport receives it, and answers an upload."""

    def __init__(self) -> None:
        self.chunks: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        async for chunk in request.stream:  # type: ignore[union-attr]
            self.chunks.append(len(chunk))
        body = {"id": "file-1", "object": "file", "bytes": 1, "filename": "big.jsonl", "purpose": "batch"}
        return httpx2.Response(201, json={**body, "status": "processed", "created_at": 1_700_000_000})


async def test_an_upload_reaches_the_transport_in_pieces_smaller_than_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"custom_id": "a"}\n' * (4 * MEGABYTE // 19))
    transport = RecordingTransport()
    connection = Connection(
        backend="emulator", style="azure", endpoint="http://emulator", api_version="2024-10-21", api_key=SecretStr("k")
    )

    async with BatchClient(connection, transport=transport, max_retries=0) as client:
        info = await client.upload_file(path, wait=False)

    assert info.id == "file-1"
    assert sum(transport.chunks) > path.stat().st_size
    assert max(transport.chunks) <= MEGABYTE


class StalledTransport(httpx2.AsyncBaseTransport):
    """Takes the request, says so, and never answers (as a server being shut down mid-upload)."""

    def __init__(self) -> None:
        self.arrived = anyio.Event()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.arrived.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_an_upload_cancelled_midway_closes_its_file(tmp_path: Path) -> None:
    # The MCP server cancels its runs' task on shutdown, maybe mid-upload: the file must not be left open.
    path = tmp_path / "shard.jsonl"
    path.write_bytes(b'{"custom_id": "a"}\n' * 1000)
    transport = StalledTransport()
    connection = Connection(
        backend="emulator", style="azure", endpoint="http://emulator", api_version="2024-10-21", api_key=SecretStr("k")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with (
            BatchClient(connection, transport=transport, max_retries=0) as client,
            anyio.create_task_group() as group,
        ):
            group.start_soon(functools.partial(client.upload_file, path, wait=False))
            with anyio.fail_after(10):
                await transport.arrived.wait()
            group.cancel_scope.cancel()
        gc.collect()

    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
