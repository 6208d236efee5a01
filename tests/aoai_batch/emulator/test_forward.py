"""The forward engine against a tiny OpenAI-compatible chat endpoint started by the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from openai.types import Batch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import EmulatorSettings
from tests.support.batch_files import request_line, write_lines
from tests.support.clients import azure_client, content, start_sdk_batch
from tests.support.clock import VALIDATION
from tests.support.http_server import served_here

CONCURRENCY = 3


class ChatEndpoint:
    """Answers chat completions; `fail` in the text -> 500, `slow` -> no answer until the emulator gives up.

    Served in the test's own event loop, so its anyio events signal the test.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.auth: set[str] = set()
        self.models: set[str] = set()
        self.full = anyio.Event()  # CONCURRENCY requests were in flight at once
        self.abandoned = anyio.Event()  # the emulator timed out on the slow request and hung up
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.complete, methods=["POST"])])

    async def complete(self, request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        self.auth.add(request.headers.get("authorization", ""))
        self.models.add(body["model"])
        text = body["messages"][-1]["content"]
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight == CONCURRENCY:
            self.full.set()
        try:
            await self.full.wait()  # the first requests are held until the emulator has sent as many as it may
            if "fail" in text:
                return JSONResponse({"error": {"code": "bad", "message": "refused"}}, status_code=500)
            if "slow" in text:
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                self.abandoned.set()
            answer = {"role": "assistant", "content": f"forwarded {text}"}
            return JSONResponse(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": answer, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                }
            )
        finally:
            self.in_flight -= 1


async def test_forward_engine_sends_each_request_and_records_failures_as_error_lines(tmp_path: Path) -> None:
    endpoint = ChatEndpoint()
    texts = [f"q{i}" for i in range(7)] + ["fail 1", "fail 2", "slow 1"]
    path = write_lines(tmp_path / "in.jsonl", *(request_line(f"t{i}", text) for i, text in enumerate(texts)))
    clock = FakeClock()
    with anyio.fail_after(30):
        async with served_here(endpoint.app) as url:
            settings = EmulatorSettings(
                home=tmp_path / "emu",
                time_scale=1.0,
                engine="forward",
                forward_url=f"{url}/v1",
                forward_key="forward-key",
                forward_model="local-model",
                forward_concurrency=CONCURRENCY,
                forward_timeout=0.5,
            )
            async with (
                Emulator(settings, clock=clock) as emulator,
                azure_client("http://emu", emulator.key, emulator.transport()) as client,
            ):
                batch_id = await start_sdk_batch(client, path)
                clock.advance(VALIDATION)  # validated: the worker takes the batch
                batch = await client.batches.retrieve(batch_id)
                await endpoint.abandoned.wait()  # the last request has timed out; its chunk is committed next
                while not is_counted(batch, len(texts)):
                    batch = await client.batches.retrieve(batch_id)
                while batch.status != "completed":
                    clock.advance(VALIDATION)
                    batch = await client.batches.retrieve(batch_id)
                output = await content(client, batch.output_file_id)
                errors = await content(client, batch.error_file_id)
    assert sorted(line["response"]["body"]["choices"][0]["message"]["content"] for line in output) == sorted(
        f"forwarded q{i}" for i in range(7)
    )
    assert sorted(line["response"]["status_code"] for line in errors) == [408, 500, 500]
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (7, 3)
    assert endpoint.peak == CONCURRENCY
    assert endpoint.auth == {"Bearer forward-key"}
    assert endpoint.models == {"local-model"}


def is_counted(batch: Batch, total: int) -> bool:
    """Whether every request of `batch` has been answered or failed."""
    counts = batch.request_counts
    return counts is not None and counts.completed + counts.failed == total


async def test_forward_engine_with_no_endpoint_is_refused(tmp_path: Path) -> None:
    settings = EmulatorSettings(home=tmp_path / "emu", engine="forward")
    with pytest.raises(ValueError):  # noqa: PT011 (the message is for people; the type is the contract)
        Emulator(settings)
