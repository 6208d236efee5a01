"""SDK clients on the emulator, and the few calls most tests begin with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
from openai import AsyncAzureOpenAI, AsyncOpenAI

from tests.support.batch_files import jsonl

API_VERSION = "2024-10-21"
Q = f"?api-version={API_VERSION}"  # the query string of a raw Azure-style request


def azure_client(base_url: str, key: str, transport: httpx2.AsyncBaseTransport | None = None) -> AsyncAzureOpenAI:
    http_client = httpx2.AsyncClient(transport=transport) if transport else None
    return AsyncAzureOpenAI(
        azure_endpoint=base_url, api_key=key, api_version=API_VERSION, max_retries=0, http_client=http_client
    )


def v1_client(base_url: str, key: str, transport: httpx2.AsyncBaseTransport | None = None) -> AsyncOpenAI:
    """AsyncOpenAI on Azure's /openai/v1/ API (base_url ending in /openai/v1) or OpenAI's /v1."""
    http_client = httpx2.AsyncClient(transport=transport) if transport else None
    return AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, http_client=http_client)


async def upload(client: AsyncOpenAI, path: Path, **kwargs: Any) -> str:
    with path.open("rb") as handle:
        uploaded = await client.files.create(file=(path.name, handle, "application/jsonl"), purpose="batch", **kwargs)
    return uploaded.id


async def start_sdk_batch(client: AsyncOpenAI, path: Path, endpoint: str = "/chat/completions") -> str:
    """Uploads `path` and creates a batch of it through the SDK; the batch's id."""
    file_id = await upload(client, path)
    # Azure's paths: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
    batch = await client.batches.create(input_file_id=file_id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    return batch.id


async def content(client: AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id
    async with client.files.with_streaming_response.content(file_id) as response:
        return jsonl(await response.read())
