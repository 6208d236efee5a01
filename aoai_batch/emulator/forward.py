"""The forward engine: each request sent to an OpenAI-compatible endpoint, a few at a time, failures as error lines."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import orjson

from aoai_batch.emulator.clock import EmulatorClock
from aoai_batch.emulator.lifecycle import BatchRunner, Worker, commit_chunk, read_chunk
from aoai_batch.emulator.lines import failed_line, fails_on_purpose, injected_failure, output_line
from aoai_batch.emulator.records import EmulatedBatch
from aoai_batch.settings import EmulatorSettings

IDLE_SECONDS = 0.05  # how often an idle worker looks for work (real time)


class ForwardEngine:
    """Sends each request to an OpenAI-compatible endpoint: a worker answers in real time, `forward_concurrency`
    requests at a time, and a batch is done once the worker has answered its last request."""

    def __init__(self, settings: EmulatorSettings) -> None:
        if not settings.forward_url:
            raise ValueError("The forward engine needs AOAI_EMULATOR_FORWARD_URL (an OpenAI-compatible base URL).")
        self.settings = settings
        self.base_url = settings.forward_url.rstrip("/")
        key = settings.forward_key.get_secret_value() if settings.forward_key else ""
        self.headers = {"Authorization": f"Bearer {key}", "api-key": key} if key else {}

    def process(self, runner: BatchRunner, record: EmulatedBatch, now: float) -> float | None:
        """When the worker answered the batch's last request (its commits are what move the batch along)."""
        return record.done_at

    def worker(self, runner: BatchRunner, clock: EmulatorClock) -> Worker:
        return ForwardWorker(self, runner, clock).run


class ForwardWorker:
    """The forward engine's task: the in-progress batches' requests, chunk by chunk, until cancelled."""

    def __init__(self, engine: ForwardEngine, runner: BatchRunner, clock: EmulatorClock) -> None:
        self.engine = engine
        self.runner = runner
        self.settings = engine.settings
        self.clock = clock

    async def run(self) -> None:
        """Work until cancelled: one chunk of `forward_concurrency` requests at a time, batch by batch."""
        limits = httpx2.Limits(max_connections=self.settings.forward_concurrency)
        async with httpx2.AsyncClient(timeout=self.settings.forward_timeout, limits=limits) as client:
            while True:
                worked = False
                for batch_id in await anyio.to_thread.run_sync(self.runner.state.active_batch_ids):
                    worked |= await self._work_on(client, batch_id)
                if not worked:
                    await anyio.sleep(IDLE_SECONDS)

    async def _work_on(self, client: httpx2.AsyncClient, batch_id: str) -> bool:
        size = self.settings.forward_concurrency
        chunk = await anyio.to_thread.run_sync(read_chunk, self.runner, batch_id, size)
        if chunk is None:
            return False
        endpoint = chunk.endpoint
        results: list[tuple[bool, bytes]] = [(False, b"")] * len(chunk.items)

        async def one(index: int, custom_id: str, body: dict[str, Any]) -> None:
            request_id = f"{batch_id[-12:]}-{chunk.cursor + index:012x}"
            results[index] = await self._send(client, endpoint, custom_id, body, request_id)

        async with anyio.create_task_group() as group:
            for index, (custom_id, body) in enumerate(chunk.items):
                group.start_soon(one, index, custom_id, body)
        await anyio.to_thread.run_sync(commit_chunk, self.runner, batch_id, chunk, results, self.clock.now())
        return True

    async def _send(
        self, client: httpx2.AsyncClient, endpoint: str, custom_id: str, body: dict[str, Any], request_id: str
    ) -> tuple[bool, bytes]:
        if fails_on_purpose(custom_id, self.settings.fail_rate):
            return False, injected_failure(custom_id, request_id)
        if self.settings.forward_model:
            body = {**body, "model": self.settings.forward_model}
        try:
            response = await client.post(self.engine.base_url + endpoint, json=body, headers=self.engine.headers)
        except httpx2.TimeoutException:
            message = f"The forward endpoint did not answer within {self.settings.forward_timeout:g} s."
            return False, failed_line(custom_id, request_id, 408, "timeout", message)
        except httpx2.HTTPError as exc:
            message = f"The forward endpoint could not be reached ({type(exc).__name__})."
            return False, failed_line(custom_id, request_id, 502, "forward_failed", message)
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            message = f"The forward endpoint answered {response.status_code} without JSON."
            return False, failed_line(custom_id, request_id, 502, "forward_failed", message)
        ok = response.is_success and isinstance(answer, dict)
        return ok, output_line(custom_id, request_id, answer, response.status_code)
