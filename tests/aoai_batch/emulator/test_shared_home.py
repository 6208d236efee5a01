"""Two emulators on one home (two MCP servers, each with its embedded emulator): each batch is advanced by
one of them at a time, finalized once, and its output is complete.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import anyio

from aoai_batch.client import BatchClient, emulator_connection
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.emulator.lease import LEASE_SECONDS
from aoai_batch.results.fetch import fetch_results
from aoai_batch.settings import EmulatorSettings
from aoai_batch.store import Store
from tests.support.batch_files import write_batch_file
from tests.support.clients import azure_client, content, start_sdk_batch
from tests.support.clock import DONE, PER_REQUEST, VALIDATION

KEY = "test-key"
START = 1_750_000_000.0  # FakeClock's default start
BATCHES = 6
REQUESTS = 1500

# A second process with its own emulator on the same home: it asks for every batch at once, on a clock at
# which each of them is due to have run to completion, so the whole lifecycle happens in those requests.
ADVANCER = textwrap.dedent(
    f"""
    import sys
    import anyio
    import httpx2
    from aoai_batch.emulator import Emulator, FakeClock
    from aoai_batch.settings import EmulatorSettings

    async def ask(http, batch_id, statuses):
        answer = await http.get(f"/openai/batches/{{batch_id}}", params={{"api-version": "2024-10-21"}},
                                headers={{"api-key": "{KEY}"}})
        statuses.append(answer.json()["status"])

    async def main():
        home, ids = sys.argv[1], sys.argv[2:]
        settings = EmulatorSettings(home=home, time_scale=1.0, key="{KEY}")
        async with Emulator(settings, clock=FakeClock({START} + {DONE})) as emulator:
            async with httpx2.AsyncClient(transport=emulator.transport(), base_url="http://emulator") as http:
                print("ready", flush=True)
                await anyio.to_thread.run_sync(sys.stdin.readline)
                statuses = []
                async with anyio.create_task_group() as group:
                    for batch_id in ids:
                        group.start_soon(ask, http, batch_id, statuses)
                print(" ".join(statuses), flush=True)

    anyio.run(main)
    """
)


def settings_for(home: Path) -> EmulatorSettings:
    return EmulatorSettings(home=home, time_scale=1.0, key=KEY)


async def create_batches(home: Path, folder: Path) -> list[str]:
    write_batch_file(folder / "in.jsonl", count=REQUESTS)
    async with (
        Emulator(settings_for(home), clock=FakeClock(START)) as emulator,
        azure_client("http://emulator", emulator.key, emulator.transport()) as client,
    ):
        return [await start_sdk_batch(client, folder / "in.jsonl") for _ in range(BATCHES)]


def advance_in_processes(home: Path, batch_ids: list[str], processes: int) -> list[str]:
    """Start `processes` advancers, let them go together, and return the statuses they saw."""
    advancers = [
        subprocess.Popen(
            [sys.executable, "-c", ADVANCER, str(home), *batch_ids],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for advancer in advancers:
            assert advancer.stdout is not None
            assert advancer.stdout.readline().strip() == "ready"
        for advancer in advancers:
            assert advancer.stdin is not None
            advancer.stdin.write("go\n")
            advancer.stdin.flush()
        outputs = [advancer.communicate(timeout=120)[0] for advancer in advancers]
    finally:
        for advancer in advancers:
            advancer.kill()
            advancer.communicate(timeout=30)
    assert [advancer.returncode for advancer in advancers] == [0] * processes
    return " ".join(outputs).split()


async def test_two_processes_on_one_home_finalize_each_batch_once_with_complete_output(tmp_path: Path) -> None:
    """Before the lease, both ran each batch: output lines twice, or the batch pointed at an empty file."""
    home = tmp_path / "emulator"
    batch_ids = await create_batches(home, tmp_path)

    statuses = advance_in_processes(home, batch_ids, processes=2)

    assert set(statuses) <= {"validating", "in_progress", "finalizing", "completed"}
    expected = [f"task-{i}" for i in range(REQUESTS)]
    async with (
        Emulator(settings_for(home), clock=FakeClock(START + DONE)) as emulator,
        azure_client("http://emulator", emulator.key, emulator.transport()) as client,
    ):
        outputs = Counter(f.filename for f in emulator.operations.state.list_files() if f.purpose == "batch_output")
        for batch_id in batch_ids:
            batch = await client.batches.retrieve(batch_id)
            assert batch.status == "completed"
            assert batch.request_counts is not None
            assert batch.request_counts.completed == REQUESTS
            assert [line["custom_id"] for line in await content(client, batch.output_file_id)] == expected
            assert await content(client, batch.error_file_id) == []
            assert outputs[f"{batch_id}_output.jsonl"] == 1
            assert outputs[f"{batch_id}_error.jsonl"] == 1
        connection = emulator_connection(emulator.key, api_version="2024-10-21")
        async with (
            BatchClient(connection, transport=emulator.transport(), max_retries=0) as batches,
            await Store.open(tmp_path / "state.sqlite3") as store,
        ):
            with anyio.fail_after(60):
                summary = await fetch_results(batches, store, batch_ids[0], output_dir=tmp_path / "results")
    assert summary.counts.model_dump() == {"succeeded": REQUESTS, "failed": 0, "missing": 0}


STOPPED_AT = START + VALIDATION + 4 * PER_REQUEST  # where the stopped owner's clock is: 4 requests done

# An emulator on the same home that runs the batch part way, then starts another step (takes the lease,
# writes a torn line to the work file) and is killed before saving it.
STOPPED_OWNER = textwrap.dedent(
    f"""
    import sys
    import anyio
    from aoai_batch.emulator import Emulator, FakeClock
    from aoai_batch.settings import EmulatorSettings

    async def main():
        home, batch_id = sys.argv[1], sys.argv[2]
        settings = EmulatorSettings(home=home, time_scale=1.0, key="{KEY}")
        emulator = Emulator(settings, clock=FakeClock({STOPPED_AT}))
        await emulator.__aenter__()
        runner = emulator.operations.runner
        record = runner.advance(batch_id, {STOPPED_AT})
        assert runner.state.leases.take(batch_id)
        with runner.open_work(record) as (source, out, err):
            out.write(b'{{"id": "torn')
        print(record.status, record.completed, flush=True)
        sys.stdin.readline()

    anyio.run(main)
    """
)


def stop_an_owner_mid_step(home: Path, batch_id: str) -> list[str]:
    """Run STOPPED_OWNER until it holds the lease mid-step, then kill it; return the state it saved."""
    owner = subprocess.Popen(
        [sys.executable, "-c", STOPPED_OWNER, str(home), batch_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        return owner.stdout.readline().split()
    finally:
        owner.kill()  # it stops without giving its lease back
        owner.communicate(timeout=30)


async def test_a_batch_whose_owner_stopped_is_taken_over_once_its_lease_expires(tmp_path: Path) -> None:
    home = tmp_path / "emulator"
    write_batch_file(tmp_path / "in.jsonl", count=10)
    clock = FakeClock(START)
    async with (
        Emulator(settings_for(home), clock=clock) as emulator,
        azure_client("http://emulator", emulator.key, emulator.transport()) as client,
    ):
        batch_id = await start_sdk_batch(client, tmp_path / "in.jsonl")
    assert stop_an_owner_mid_step(home, batch_id) == ["in_progress", "4"]

    clock = FakeClock(STOPPED_AT + LEASE_SECONDS / 3)  # before the stopped owner's lease expires
    async with (
        Emulator(settings_for(home), clock=clock) as emulator,
        azure_client("http://emulator", emulator.key, emulator.transport()) as client,
    ):
        with anyio.fail_after(30):
            held = await client.batches.retrieve(batch_id)
            clock.advance(2 * PER_REQUEST)  # past its expiry
            taken_over = await client.batches.retrieve(batch_id)
            clock.advance(DONE)
            done = await client.batches.retrieve(batch_id)
            lines = await content(client, done.output_file_id)

    assert held.request_counts is not None
    assert (held.status, held.request_counts.completed) == ("in_progress", 4)  # the stopped owner's lease holds
    assert taken_over.request_counts is not None
    assert taken_over.request_counts.completed == 6  # taken over: the requests due by now are done
    assert done.status == "completed"
    assert [line["custom_id"] for line in lines] == [f"task-{i}" for i in range(10)]  # no torn or doubled line
