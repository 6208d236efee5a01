"""Three replicas on one registry, 50 batches and 5 runs in flight, one replica killed with kill -9.

The registry is PostgreSQL (a throwaway server from the machine's binaries, tests/support/postgres.py) when
PostgreSQL is installed, else SQLite under one shared home (printed). Azure is `aoai-batch-mcp emulator` in a
process of its own, reached over loopback HTTP by everyone, with a fast clock. This process uploads 50 files
and creates 50 batches (each under an idempotency key) and starts 5 runs of 4 shards, then starts three
`aoai-batch-mcp serve --transport http` replicas, whose watchers poll the batches and step the runs under
leases. Once the jobs are under way, the replica holding the most leases is killed with SIGKILL. Then:

- takeover: from the kill to the moment every lease the killed replica held belongs to another replica (the
  first poll or step of its jobs by another), against the poll interval (its baseline, in the same run) and the
  lease's length. With `--hosts separate` each replica runs in a UTS namespace of its own (`unshare -u`, root
  only), so a killed replica looks like another host's and its leases must expire; `same` (the default when
  unshare is not allowed) frees them at once (`leases.holder_is_gone`).
- batches created twice on the emulator (two batches under one idempotency key: must be 0), jobs lost (a batch
  or run not finished, or a run's requests not all back: must be 0), and the wall time to finish everything.

    python -m bench.replicas [--hosts same|separate] [--engine postgresql|sqlite] [--poll 0.5] [--work DIR]

(from the repository root: it borrows the test suite's PostgreSQL server and batch files)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

# The checkout this script is in (its bench and tests packages too), whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aoai_batch.leases import RUN_LEASE_SECONDS, batch_lease_seconds
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from aoai_batch.store import Store
from bench import emulated
from tests.support.batch_files import write_batch_file
from tests.support.postgres import PostgresServer, find_bindir

KEY = "bench"
REPLICAS = 3
BATCHES = 50
RUNS = 5
SHARDS_PER_RUN = 4
REQUESTS_PER_SHARD = 10
TIME_SCALE = (
    100.0  # emulated seconds per real second: a 10-request batch takes ~12 s (validation, requests, finalizing)
)
STARTUP_WAIT = 60.0
FINISH_WAIT = 300.0
WATCH = 0.01  # how often this process looks at the leases table


def emulator_process(home: Path) -> contextlib.AbstractContextManager[str]:
    return emulated.emulator_process(home, key=KEY, time_scale=TIME_SCALE)


def environment(home: Path, work: Path, emulator: str, database_url: str | None, poll: float) -> dict[str, str]:
    env = {
        **os.environ,
        "AOAI_BATCH_HOME": str(home),
        "AOAI_BATCH_WORKSPACE": str(work),
        "AOAI_BATCH_PROVIDER": "emulator",
        "AZURE_OPENAI_ENDPOINT": emulator,
        "AZURE_OPENAI_API_KEY": KEY,
        "AOAI_BATCH_POLL_SECONDS": str(poll),
        "AOAI_BATCH_MAX_REQUESTS": str(REQUESTS_PER_SHARD),
    }
    if database_url:
        env["AOAI_BATCH_DATABASE_URL"] = database_url
    return env


def start_replica(n: int, env: dict[str, str], separate_host: bool, log: Path) -> subprocess.Popen[bytes]:
    serve = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", "0"]
    if separate_host:  # a UTS namespace of its own: another hostname, so its pid means nothing to the others
        command = ["unshare", "-u", "sh", "-c", f'hostname replica-{n} && exec "$@"', "sh", *serve]
    else:
        command = serve
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def unshare_works() -> bool:
    done = subprocess.run(["unshare", "-u", "true"], capture_output=True, check=False)
    return done.returncode == 0


async def put_jobs_in_flight(settings: Settings, work: Path) -> tuple[list[str], list[str]]:
    """50 batches (uploaded and created under idempotency keys) and 5 runs, as clients would start them."""
    async with BatchService.open(settings) as service, RunService.open(settings, service) as runs:
        batch_ids = []
        for n in range(BATCHES):
            path = write_batch_file(work / f"batch-{n:02d}.jsonl", count=REQUESTS_PER_SHARD)
            uploaded = await service.upload_file(path)
            batch_ids.append((await service.create_batch(uploaded.file.id, idempotency_key=f"bench-{n}")).id)
        run_ids = []
        for n in range(RUNS):
            prompts = [f"run {n} question {k}" for k in range(SHARDS_PER_RUN * REQUESTS_PER_SHARD)]
            run = await runs.start_run(deployments=["gpt-4o-mini"], prompts=prompts, name=f"bench-{n}")
            run_ids.append(run.id)
    return batch_ids, run_ids


async def leases(store: Store) -> dict[tuple[str, str], str]:
    rows = await store.database.fetch("SELECT kind, id, holder FROM leases")
    return {(row["kind"], row["id"]): row["holder"] for row in rows}


def pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


async def wait_until_under_way(store: Store, pids: set[int]) -> dict[tuple[str, str], str]:
    """The leases once replicas hold the batches' (and a few seconds have passed, so runs have submitted)."""
    with anyio.fail_after(STARTUP_WAIT):
        while True:
            held = await leases(store)
            batches = [holder for (kind, _), holder in held.items() if kind == "batch" and pid_of(holder) in pids]
            if len(batches) >= BATCHES // 2:
                return held
            await anyio.sleep(0.1)


async def takeover(
    store: Store, killed: int, jobs: set[tuple[str, str]], killed_at: float
) -> dict[tuple[str, str], float]:
    """Seconds from the kill until each of the killed replica's jobs is leased by another (or released by one:
    a run's lease is given up after each step)."""
    taken: dict[tuple[str, str], float] = {}
    with anyio.fail_after(RUN_LEASE_SECONDS + FINISH_WAIT):
        while len(taken) < len(jobs):
            held = await leases(store)
            for job in jobs - taken.keys():
                holder = held.get(job)
                if holder is None or pid_of(holder) != killed:
                    taken[job] = time.monotonic() - killed_at
            await anyio.sleep(WATCH)
    return taken


async def wait_until_finished(settings: Settings, batch_ids: list[str], run_ids: list[str]) -> list[str]:
    """Waits for every job to end (or the wait to run out); the ids of those that did not finish."""
    deadline = time.monotonic() + FINISH_WAIT
    async with await Store.open_for(settings) as store:
        while True:
            unfinished = []
            for batch_id in batch_ids:
                record = await store.get_batch(batch_id)
                if record is None or record.batch.status != "completed":
                    unfinished.append(batch_id)
            rows = await store.database.fetch("SELECT id, status FROM runs")
            unfinished += [row["id"] for row in rows if row["status"] != "completed"]
            if not unfinished or time.monotonic() > deadline:
                return unfinished
            await anyio.sleep(0.5)


async def emulator_batches(settings: Settings) -> list[Any]:
    async with BatchService.open(settings) as service:
        found, after = [], None
        while True:
            page = await service.list_batches(limit=100, after=after)
            found += page.batches
            if not page.has_more:
                return found
            after = page.last_id


async def requests_missing(settings: Settings, run_ids: list[str]) -> int:
    async with BatchService.open(settings) as service, RunService.open(settings, service) as runs:
        missing = 0
        for run_id in run_ids:
            run = await runs.get_run(run_id)
            missing += run.requests - run.request_counts.completed
        return missing


async def bench(args: argparse.Namespace, work: Path, database_url: str | None) -> None:
    home, workspace = work / "home", work / "ws"
    workspace.mkdir(parents=True)
    separate = args.hosts == "separate"
    with emulator_process(work / "emulator") as url:
        env = environment(home, workspace, url, database_url, args.poll)
        os.environ.update({k: v for k, v in env.items() if k.startswith(("AOAI_BATCH_", "AZURE_OPENAI_"))})
        settings = Settings()
        started = time.monotonic()
        batch_ids, run_ids = await put_jobs_in_flight(settings, workspace)
        replicas = [start_replica(n, env, separate, work / f"replica-{n}.log") for n in range(REPLICAS)]
        try:
            async with await Store.open_for(settings) as store:
                held = await wait_until_under_way(store, {replica.pid for replica in replicas})
                counts = Counter(pid_of(holder) for holder in held.values())
                victim = max(replicas, key=lambda replica: counts.get(replica.pid, 0))
                held = await leases(store)  # as near the kill as can be
                jobs = {job for job, holder in held.items() if pid_of(holder) == victim.pid}
                os.kill(victim.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                victim.wait()
                taken = await takeover(store, victim.pid, jobs, killed_at)
            unfinished = await wait_until_finished(settings, batch_ids, run_ids)
            wall = time.monotonic() - started
        finally:
            for replica in replicas:
                if replica.poll() is None:
                    replica.send_signal(signal.SIGTERM)
            for replica in replicas:
                replica.wait(timeout=30)
        on_emulator = await emulator_batches(settings)
        missing = await requests_missing(settings, run_ids)
    keys = Counter(batch.metadata.get("idempotency_key") for batch in on_emulator)
    twice = sum(count - 1 for count in keys.values() if count > 1)
    kinds = Counter(kind for kind, _ in jobs)
    ttl = batch_lease_seconds(args.poll)
    by_kind = {kind: [seconds for (k, _), seconds in taken.items() if k == kind] for kind in ("batch", "run")}
    engine = "PostgreSQL" if database_url else f"SQLite ({home / 'state.sqlite3'})"
    print(f"registry: {engine}; emulator over HTTP at {url} (time scale {TIME_SCALE:g})")
    print(
        f"{REPLICAS} replicas ({'separate hosts: unshare -u' if separate else 'one host'}), poll {args.poll:g} s, "
        f"batch lease {ttl:g} s; {BATCHES} batches and {RUNS} runs of {SHARDS_PER_RUN} shards"
    )
    print(
        f"killed pid {victim.pid} with SIGKILL holding {kinds['batch']} batch and {kinds['run']} run leases "
        f"(of {len(held)})"
    )
    for kind, lease in (("batch", ttl), ("run", RUN_LEASE_SECONDS)):
        if times := by_kind[kind]:
            print(
                f"  {kind} takeover: first {min(times):.2f} s, all {len(times)} {max(times):.2f} s after the kill; "
                f"ratio to the poll interval {max(times) / args.poll:.1f}, to the {kind} lease ({lease:g} s) "
                f"{max(times) / lease:.2f}"
            )
    print(f"batches on the emulator: {len(on_emulator)}; created twice (one idempotency key, two batches): {twice}")
    print(f"jobs lost (not finished in {FINISH_WAIT:g} s): {len(unfinished)}; run requests not back: {missing}")
    print(f"every job finished {wall:.1f} s after the first upload")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", choices=["same", "separate"], default=None)
    parser.add_argument("--engine", choices=["postgresql", "sqlite"], default=None)
    parser.add_argument("--poll", type=float, default=0.5, help="the replicas' poll interval (seconds)")
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temporary folder)")
    args = parser.parse_args()
    args.hosts = args.hosts or ("separate" if unshare_works() else "same")
    engine = args.engine or ("postgresql" if find_bindir() else "sqlite")
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aoai-batch-replicas-")))
        url = None
        if engine == "postgresql":
            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql, or --engine sqlite")
            server = PostgresServer(bindir).start()
            stack.callback(server.stop)
            url = server.new_database()
        anyio.run(bench, args, work, url)


if __name__ == "__main__":
    main()
