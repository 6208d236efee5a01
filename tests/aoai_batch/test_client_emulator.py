"""BatchClient against the emulator over real loopback HTTP, in every API style."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest
from pydantic import SecretStr

from aoai_batch.client import BatchClient, Connection
from aoai_batch.client.connection import ApiStyle
from aoai_batch.errors import AuthenticationFailed, ConnectionFailed, InvalidInput, NotFound
from aoai_batch.models import Backend
from tests.support.batch_files import write_batch_file
from tests.support.credentials import FakeCredential
from tests.support.http_server import EmulatorServer


def connection(server: EmulatorServer, style: ApiStyle, key: str | None = None) -> Connection:
    endpoint = f"{server.url}/v1" if style == "openai" else server.url
    backend: Backend = "openai" if style == "openai" else "emulator"
    return Connection(
        backend=backend,
        style=style,
        endpoint=endpoint,
        api_version="2024-10-21" if style == "azure" else None,
        api_key=SecretStr(key or server.key),
        token_scope="https://cognitiveservices.azure.com/.default",
    )


async def no_sleep(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize("style", ["azure", "v1", "openai"])
async def test_every_api_style_runs_the_file_and_batch_operations(
    emulator_server: EmulatorServer, tmp_path: Path, style: ApiStyle
) -> None:
    source = write_batch_file(tmp_path / "in.jsonl")
    with anyio.fail_after(60):
        async with BatchClient(connection(emulator_server, style), sleep=no_sleep) as client:
            info = await client.upload_file(source, expires_after_days=14)
            batch = await client.create_batch(info.id, metadata={"run": "1"})
            again = await client.get_batch(batch.id)
            page = await client.list_batches(limit=5)
            cancelled = await client.cancel_batch(batch.id)
            size = await client.download_file(info.id, tmp_path / "copy.jsonl")
    assert info.status == "processed"
    assert info.bytes == source.stat().st_size
    assert info.expires_at is not None
    assert again.id == batch.id
    assert again.metadata["run"] == "1"
    assert [b.id for b in page.batches] == [batch.id]
    assert cancelled.status in {"cancelling", "cancelled"}
    assert size == source.stat().st_size
    assert (tmp_path / "copy.jsonl").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("style", ["azure", "v1"])
async def test_entra_id_tokens_are_accepted_as_bearer_auth(emulator_server: EmulatorServer, style: ApiStyle) -> None:
    entra = connection(emulator_server, style).model_copy(update={"api_key": None})
    credential = FakeCredential(emulator_server.key)
    async with BatchClient(entra, credential=credential) as client:
        page = await client.list_batches()
    assert page.batches == []
    assert credential.closed


async def test_a_wrong_key_is_an_authentication_error(emulator_server: EmulatorServer) -> None:
    async with BatchClient(connection(emulator_server, "azure", key="wrong")) as client:
        with pytest.raises(AuthenticationFailed):
            await client.list_batches()


async def test_downloads_never_overwrite_and_leave_nothing_behind_on_failure(
    emulator_server: EmulatorServer, tmp_path: Path
) -> None:
    source = write_batch_file(tmp_path / "in.jsonl")
    existing = tmp_path / "existing.jsonl"
    existing.write_text("keep me", encoding="utf-8")
    async with BatchClient(connection(emulator_server, "azure"), sleep=no_sleep) as client:
        info = await client.upload_file(source)
        with pytest.raises(InvalidInput):
            await client.download_file(info.id, existing)
        with pytest.raises(NotFound):
            await client.download_file("file-missing", tmp_path / "out" / "missing.jsonl")
        await client.download_file(info.id, existing, overwrite=True)
    assert existing.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


async def test_an_unreachable_endpoint_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = Connection(
        backend="azure",
        style="azure",
        endpoint=f"http://127.0.0.1:{port}",
        api_version="2024-10-21",
        api_key=SecretStr("k"),
    )
    async with BatchClient(closed, max_retries=0) as client:
        with pytest.raises(ConnectionFailed):
            await client.get_batch("batch_1")


@pytest.mark.parametrize("style", ["azure", "v1", "openai"])
async def test_list_files_is_one_page_per_call_newest_first(
    emulator_server: EmulatorServer, tmp_path: Path, style: ApiStyle
) -> None:
    source = write_batch_file(tmp_path / "in.jsonl")
    with anyio.fail_after(60):
        async with BatchClient(connection(emulator_server, style), sleep=no_sleep) as client:
            ids = [(await client.upload_file(source, expires_after_days=14)).id for _ in range(3)]
            pages = [await client.list_files(limit=2)]
            while pages[-1].has_more and len(pages) < 5:
                pages.append(await client.list_files(limit=2, after=pages[-1].last_id))
    assert [len(page.files) for page in pages] == [2, 1]
    assert [info.id for page in pages for info in page.files] == ids[::-1]
    assert pages[0].last_id == ids[1]
