"""An upload streams the file from disk: the SDK gets an open file, never the file's bytes in one piece."""

from __future__ import annotations

from pathlib import Path

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
