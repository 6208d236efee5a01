"""Both engines fill the whole engine interface (`lifecycle.Engine`): every member does its work, none only raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.emulator.echo import EchoEngine
from aoai_batch.emulator.forward import ForwardEngine
from aoai_batch.emulator.lifecycle import Engine
from aoai_batch.emulator.records import EmulatedBatch
from aoai_batch.settings import EmulatorSettings
from tests.support.batch_files import write_batch_file
from tests.support.clients import azure_client, start_sdk_batch

REQUESTS = 4


def make_engine(name: str, settings: EmulatorSettings) -> Engine:
    if name == "forward":
        return ForwardEngine(settings.model_copy(update={"forward_url": "http://127.0.0.1:9/v1"}))
    return EchoEngine()


async def in_progress_batch(emulator: Emulator, clock: FakeClock, tmp_path: Path) -> EmulatedBatch:
    client = azure_client("http://emulator", emulator.key, emulator.transport())
    batch_id = await start_sdk_batch(client, write_batch_file(tmp_path / "in.jsonl", count=REQUESTS))
    clock.advance(300)  # past validation
    assert (await client.batches.retrieve(batch_id)).status == "in_progress"
    record = emulator.operations.state.get_batch(batch_id)
    assert record is not None
    return record


def test_the_engine_interface_is_what_the_runner_and_the_emulator_call() -> None:
    assert sorted(name for name in vars(Engine) if not name.startswith("_")) == ["process", "worker"]


@pytest.mark.parametrize("name", ["echo", "forward"])
async def test_each_engine_processes_a_running_batch_and_says_whether_it_needs_a_worker(
    name: str, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    engine = make_engine(name, emulator.settings)
    runner = emulator.operations.runner
    record = await in_progress_batch(emulator, fake_clock, tmp_path)
    assert record.in_progress_at is not None
    end = record.in_progress_at + record.processing_seconds

    finished = engine.process(runner, record, end)
    worker = engine.worker(runner, fake_clock)

    if name == "echo":  # answered inline, on the clock: everything is due at `end`, and no task is needed
        assert (finished, record.cursor, record.completed) == (end, REQUESTS, REQUESTS)
        assert worker is None
    else:  # answered by its worker in real time: nothing done inline, not finished until the worker says so
        assert (finished, record.cursor) == (None, 0)
        assert callable(worker)
