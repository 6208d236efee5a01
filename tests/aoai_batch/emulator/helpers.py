"""Batch files and SDK clients for the emulator's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import orjson
from openai import AsyncAzureOpenAI, AsyncOpenAI

API_VERSION = "2024-10-21"
DONE = 10 * 86_400.0  # clock seconds after which any batch of these tests has ended (time_scale 1)


def request_line(custom_id: str, text: str = "hello", model: str = "gpt-4o-mini", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}], **body},
    }


def write_batch_file(path: Path, count: int = 3, **kwargs: Any) -> Path:
    lines = [orjson.dumps(request_line(f"task-{i}", f"question {i}", **kwargs)) for i in range(count)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def azure_client(base_url: str, key: str, transport: httpx2.AsyncBaseTransport | None = None) -> AsyncAzureOpenAI:
    http_client = httpx2.AsyncClient(transport=transport) if transport else None
    return AsyncAzureOpenAI(
        azure_endpoint=base_url, api_key=key, api_version=API_VERSION, max_retries=0, http_client=http_client
    )


def v1_client(base_url: str, key: str, transport: httpx2.AsyncBaseTransport | None = None) -> AsyncOpenAI:
    """AsyncOpenAI on Azure's /openai/v1/ API (base_url ending in /openai/v1) or OpenAI's /v1."""
    http_client = httpx2.AsyncClient(transport=transport) if transport else None
    return AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, http_client=http_client)


def jsonl(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


async def upload(client: AsyncOpenAI, path: Path, **kwargs: Any) -> str:
    with path.open("rb") as handle:
        uploaded = await client.files.create(file=(path.name, handle, "application/jsonl"), purpose="batch", **kwargs)
    return uploaded.id


async def start_batch(client: AsyncOpenAI, path: Path, endpoint: str = "/chat/completions") -> str:
    file_id = await upload(client, path)
    batch = await client.batches.create(input_file_id=file_id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    return batch.id


async def content(client: AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id
    async with client.files.with_streaming_response.content(file_id) as response:
        return jsonl(await response.read())
