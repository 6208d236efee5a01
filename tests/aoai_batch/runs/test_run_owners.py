"""Whose runs a call may see (SPEC §10): RunService on the real emulator and registry, each call run as a
viewer (`identity.acting_as`); the steps act as the run's owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.identity import acting_as
from aoai_batch.runs.service import RunService
from tests.support.batch_files import request_line, write_lines
from tests.support.owners import ALICE, BOB, BOB_SHARED, open_registry, refused
from tests.support.runs import drive


async def test_another_users_run_is_refused_exactly_as_a_missing_one(
    runs: RunService, fake_clock: FakeClock, emulator: Emulator, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *[request_line(f"t-{n}", f"Q {n}?") for n in range(12)])
    with acting_as(ALICE):
        started = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source, idempotency_key="k")
    done = await drive(runs, fake_clock, started.id)  # the background steps it, as its owner
    calls: dict[str, Callable[[str], Awaitable[Any]]] = {
        "get_run": runs.get_run,
        "cancel_run": runs.cancel_run,
        "fetch_run_results": lambda run_id: runs.fetch_run_results(run_id, output_dir=tmp_path / "bob"),
        "results_summary": runs.results_summary,
        "advance": runs.advance,
    }
    with acting_as(BOB):
        for name, call in calls.items():
            theirs = await refused(call, started.id)
            assert theirs == await refused(call, "run_000000000000000000000000"), name
        assert (await runs.list_runs()).runs == []
        assert await runs.active_runs() == []
        bobs = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source, idempotency_key="k")
    assert bobs.id != started.id  # the same key, bob's own run
    with acting_as(ALICE):
        assert [run.id for run in (await runs.list_runs()).runs] == [started.id]
        again = await runs.start_run(deployments=["gpt-4o-mini"], batch_path=source, idempotency_key="k")
        summary = await runs.fetch_run_results(started.id, output_dir=tmp_path / "alice")
    assert (again.id, again.idempotency_key, summary.counts.succeeded) == (started.id, "k", 12)
    with acting_as(BOB_SHARED):
        assert {run.id for run in (await runs.list_runs()).runs} == {started.id, bobs.id}
        assert (await runs.get_run(started.id)).status == "completed"
    async with await open_registry(tmp_path / "home") as registry:
        shard_batches = {shard.batch_id for shard in done.shards}
        owners = {record.owner for record in await registry.list_batches() if record.batch.id in shard_batches}
    assert owners == {"alice-oid"}  # the run's shards are its owner's
