"""The emulator over loopback HTTP with the real SDK: Azure's dated API, Azure's v1 API, OpenAI's paths."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI, OpenAI

from tests.support.batch_files import jsonl, write_batch_file
from tests.support.clients import azure_client, v1_client
from tests.support.clock import DONE
from tests.support.http_server import EmulatorServer


def client_for(flavor: str, server: EmulatorServer) -> AsyncAzureOpenAI | AsyncOpenAI:
    if flavor == "azure":
        return azure_client(server.url, server.key)
    prefix = "/openai/v1" if flavor == "azure_v1" else "/v1"
    return v1_client(server.url + prefix, server.key)


@pytest.mark.parametrize("flavor", ["azure", "azure_v1", "openai"])
async def test_full_lifecycle_works_over_http_on_every_route_flavor(
    emulator_server: EmulatorServer, tmp_path: Path, flavor: str
) -> None:
    path = write_batch_file(tmp_path / "in.jsonl", count=4)
    with anyio.fail_after(20):
        async with client_for(flavor, emulator_server) as client:
            with path.open("rb") as handle:
                uploaded = await client.files.create(file=("in.jsonl", handle, "application/jsonl"), purpose="batch")
            batch = await client.batches.create(
                input_file_id=uploaded.id,
                # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
                endpoint="/chat/completions",  # type: ignore[arg-type]
                completion_window="24h",
            )
            emulator_server.clock.advance(DONE)
            batch = await client.batches.retrieve(batch.id)
            assert batch.status == "completed"
            assert batch.output_file_id is not None
            async with client.files.with_streaming_response.content(batch.output_file_id) as response:
                data = await response.read()
            listed = await client.batches.list()
    assert len(jsonl(data)) == 4
    assert [b.id for b in listed.data] == [batch.id]


def test_sync_client_reaches_the_server(emulator_server: EmulatorServer) -> None:
    with OpenAI(base_url=f"{emulator_server.url}/openai/v1", api_key=emulator_server.key, max_retries=0) as client:
        page = client.batches.list()
    assert page.data == []
