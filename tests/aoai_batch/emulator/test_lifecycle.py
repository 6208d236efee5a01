"""A batch's life through the real openai SDK: upload, create, advance the clock, read the files."""

from __future__ import annotations

from pathlib import Path

import anyio

from aoai_batch.emulator import Emulator, FakeClock
from tests.support.batch_files import jsonl, write_batch_file
from tests.support.clients import azure_client
from tests.support.clock import DONE


async def test_batch_runs_from_validating_to_completed_with_output_lines(
    emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    client = azure_client("http://emulator", emulator.key, emulator.transport())
    path = write_batch_file(tmp_path / "in.jsonl", count=5)
    with anyio.fail_after(10):
        with path.open("rb") as handle:
            uploaded = await client.files.create(file=("in.jsonl", handle, "application/jsonl"), purpose="batch")
        assert uploaded.purpose == "batch"
        assert uploaded.bytes == path.stat().st_size
        batch = await client.batches.create(
            input_file_id=uploaded.id,
            # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
            endpoint="/chat/completions",  # type: ignore[arg-type]
            completion_window="24h",
        )
        assert batch.status == "validating"
        fake_clock.advance(300)
        batch = await client.batches.retrieve(batch.id)
        assert batch.status == "in_progress"
        assert batch.request_counts is not None
        assert batch.request_counts.total == 5
        fake_clock.advance(120)
        batch = await client.batches.retrieve(batch.id)
        assert batch.request_counts is not None
        assert batch.request_counts.completed == 2
        fake_clock.advance(DONE)
        batch = await client.batches.retrieve(batch.id)
        assert batch.status == "completed"
        assert batch.output_file_id
        assert batch.error_file_id
        output = await client.files.content(batch.output_file_id)
        errors = await client.files.content(batch.error_file_id)
    lines = jsonl(output.content)
    assert [line["custom_id"] for line in lines] == [f"task-{i}" for i in range(5)]
    assert all(line["response"]["status_code"] == 200 for line in lines)
    assert lines[0]["response"]["body"]["choices"][0]["message"]["content"] == "Echo: question 0"
    assert lines[0]["response"]["body"]["usage"]["total_tokens"] > 0
    assert errors.content == b""
