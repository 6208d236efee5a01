"""Validation failures, cancel, expiry, failures per request, the legacy format, file states, restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import openai
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import EmulatorSettings
from tests.support.batch_files import request_line, write_batch_file, write_lines
from tests.support.clients import azure_client, content, start_sdk_batch, upload
from tests.support.clock import DONE

Client = openai.AsyncAzureOpenAI


@asynccontextmanager
async def running(tmp_path: Path, clock: FakeClock, **settings: Any) -> AsyncIterator[tuple[Emulator, Client]]:
    emulator_settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, **settings)
    with anyio.fail_after(30):
        async with (
            Emulator(emulator_settings, clock=clock) as emulator,
            azure_client("http://emu", emulator.key, emulator.transport()) as client,
        ):
            yield emulator, client


BAD_FILES: list[tuple[str, Callable[[], list[Any]], str, int | None]] = [
    ("duplicate", lambda: [request_line("a"), request_line("a")], "duplicate_custom_id", 2),
    ("unknown deployment", lambda: [request_line("a", model="nope")], "model_not_found", 1),
    ("two deployments", lambda: [request_line("a"), request_line("b", model="gpt-4o")], "model_mismatch", 2),
    ("not json", lambda: ["just a string", request_line("b")], "invalid_request", 1),
    ("empty", list, "empty_file", None),
]


@pytest.mark.parametrize(("name", "lines", "code", "line"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
async def test_a_bad_input_file_fails_the_batch_with_azure_codes_and_lines(
    tmp_path: Path, fake_clock: FakeClock, name: str, lines: Callable[[], list[Any]], code: str, line: int | None
) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        batch_id = await start_sdk_batch(client, write_lines(tmp_path / "in.jsonl", *lines()))
        fake_clock.advance(DONE)
        batch = await client.batches.retrieve(batch_id)
    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.errors is not None
    assert batch.errors.data
    first = batch.errors.data[0]
    assert first.code == code
    assert first.line == line


async def test_a_file_for_another_endpoint_fails_with_url_mismatch(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl"), endpoint="/embeddings")
        fake_clock.advance(DONE)
        batch = await client.batches.retrieve(batch_id)
    assert batch.errors is not None
    assert [e.code for e in batch.errors.data or []] == ["url_mismatch"]


async def test_cancel_keeps_the_requests_done_so_far(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl", count=10))
        fake_clock.advance(300 + 3 * 60)
        cancelling = await client.batches.cancel(batch_id)
        again = await client.batches.cancel(batch_id)
        fake_clock.advance(DONE)
        batch = await client.batches.retrieve(batch_id)
        output = await content(client, batch.output_file_id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    assert again.status == "cancelling"
    assert batch.status == "cancelled"
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 3
    assert [line["custom_id"] for line in output] == ["task-0", "task-1", "task-2"]


async def test_cancel_of_a_completed_batch_is_an_error(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl"))
        fake_clock.advance(DONE)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.batches.cancel(batch_id)
    assert caught.value.status_code == 400


async def test_a_batch_past_its_window_expires_with_partial_output(tmp_path: Path, fake_clock: FakeClock) -> None:
    # 10 requests of 3 hours each do not fit in 24 hours: 7 are done (300 s of validation first).
    async with running(tmp_path, fake_clock, seconds_per_request=3 * 3600, max_processing_seconds=10**9) as (_, c):
        batch_id = await start_sdk_batch(c, write_batch_file(tmp_path / "in.jsonl", count=10))
        fake_clock.advance(DONE)
        batch = await c.batches.retrieve(batch_id)
        output = await content(c, batch.output_file_id)
        errors = await content(c, batch.error_file_id)
    assert batch.status == "expired"
    assert batch.expired_at == batch.expires_at
    assert len(output) == 7
    assert [line["error"]["code"] for line in errors] == ["batch_expired"] * 3
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (7, 3)


async def test_failures_follow_the_rate_and_the_same_ids_fail_every_run(tmp_path: Path, fake_clock: FakeClock) -> None:
    failed: list[list[str]] = []
    for run in range(2):
        async with running(tmp_path / str(run), fake_clock, fail_rate=0.3) as (_, client):
            batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / f"in{run}.jsonl", count=40))
            fake_clock.advance(DONE)
            batch = await client.batches.retrieve(batch_id)
            errors = await content(client, batch.error_file_id)
            output = await content(client, batch.output_file_id)
        failed.append([line["custom_id"] for line in errors])
        assert len(errors) + len(output) == 40
        assert all(line["response"]["status_code"] == 500 for line in errors)
        assert all(line["response"]["body"]["error"]["code"] for line in errors)
    assert failed[0] == failed[1]
    assert 0 < len(failed[0]) < 40


@pytest.mark.parametrize(("switch", "has_output"), [(True, False), (False, True)])
async def test_an_all_failed_batch_has_no_output_file_only_when_asked(
    tmp_path: Path, fake_clock: FakeClock, switch: bool, has_output: bool
) -> None:
    async with running(tmp_path, fake_clock, fail_rate=1.0, no_output_when_all_failed=switch) as (_, client):
        batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl"))
        fake_clock.advance(DONE)
        batch = await client.batches.retrieve(batch_id)
    assert batch.status == "completed"
    assert (batch.output_file_id is not None) == has_output
    assert batch.error_file_id is not None


async def test_legacy_format_answers_iso_times_and_capitalised_status(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock, format="legacy") as (emulator, client):
        batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl"))
        async with httpx2.AsyncClient(transport=emulator.transport(), base_url="http://emu") as http:
            url = f"/openai/batches/{batch_id}?api-version=2024-10-21"
            first = (await http.get(url, headers={"api-key": "k"})).json()
            fake_clock.advance(300)
            second = (await http.get(url, headers={"api-key": "k"})).json()
            fake_clock.advance(DONE)
            last = (await http.get(url, headers={"api-key": "k"})).json()
    assert first["status"] == "Validating"
    assert second["status"] == "InProgress"
    assert last["status"] == "Completed"
    assert isinstance(first["created_at"], str)
    assert first["created_at"].endswith("+00:00")
    assert first["completed_at"] is None
    assert last["errors"] == {"object": "list", "data": []}


async def test_a_file_is_pending_until_processed(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock, file_processing_seconds=30) as (_, client):
        file_id = await upload(client, write_batch_file(tmp_path / "in.jsonl"))
        pending = await client.files.retrieve(file_id)
        with pytest.raises(openai.BadRequestError):
            # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
            await client.batches.create(input_file_id=file_id, endpoint="/chat/completions", completion_window="24h")  # type: ignore[arg-type]
        fake_clock.advance(30)
        processed = await client.files.retrieve(file_id)
    assert (pending.status, processed.status) == ("pending", "processed")


async def test_a_file_with_expiry_is_gone_after_it(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        expires = {"anchor": "created_at", "seconds": 1_209_600}
        file_id = await upload(client, write_batch_file(tmp_path / "in.jsonl"), expires_after=expires)
        fake_clock.advance(1_209_600)
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(file_id)
        listed = await client.files.list()
    assert listed.data == []


async def test_deleting_a_file_removes_it_unless_a_running_batch_reads_it(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl"))
        batch = await client.batches.retrieve(batch_id)
        with pytest.raises(openai.ConflictError):
            await client.files.delete(batch.input_file_id)
        fake_clock.advance(DONE)
        deleted = await client.files.delete(batch.input_file_id)
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(batch.input_file_id)
    assert deleted.deleted is True


async def test_batches_list_newest_first_in_pages(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        file_id = await upload(client, write_batch_file(tmp_path / "in.jsonl"))
        ids = []
        for _ in range(5):
            batch = await client.batches.create(
                input_file_id=file_id,
                # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
                endpoint="/chat/completions",  # type: ignore[arg-type]
                completion_window="24h",
            )
            ids.append(batch.id)
        first = await client.batches.list(limit=2)
        rest = await client.batches.list(limit=10, after=first.data[-1].id)
    assert [b.id for b in first.data] == ids[::-1][:2]
    assert first.has_more is True
    assert [b.id for b in rest.data] == ids[::-1][2:]
    assert rest.has_more is False


async def test_token_limit_fault_fails_the_batch_at_create(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock, faults="token_limit_exceeded:1") as (_, client):
        file_id = await upload(client, write_batch_file(tmp_path / "in.jsonl"))
        batch = await client.batches.create(
            input_file_id=file_id,
            # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
            endpoint="/chat/completions",  # type: ignore[arg-type]
            completion_window="24h",
        )
    assert batch.status == "failed"
    assert batch.errors is not None
    assert [e.code for e in batch.errors.data or []] == ["token_limit_exceeded"]


async def test_a_restarted_emulator_resumes_its_batches_where_they_were(tmp_path: Path, fake_clock: FakeClock) -> None:
    async with running(tmp_path, fake_clock) as (_, client):
        batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl", count=10))
        fake_clock.advance(300 + 4 * 60)
        before = await client.batches.retrieve(batch_id)
    async with running(tmp_path, fake_clock) as (_, client):
        fake_clock.advance(DONE)
        after = await client.batches.retrieve(batch_id)
        output = await content(client, after.output_file_id)
    assert before.request_counts is not None
    assert before.request_counts.completed == 4
    assert after.status == "completed"
    assert [line["custom_id"] for line in output] == [f"task-{i}" for i in range(10)]
