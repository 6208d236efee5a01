"""A run of 1,000,000 requests from a CSV on the emulator, against the same shards done one by one.

1. The run (a fresh child process): `start_run` on a CSV of `--requests` rows over two emulator deployments
   whose enqueued-token limits (`--limit` each, in the emulator and in AOAI_BATCH_ENQUEUED_TOKENS) force at
   least 10 shards and queueing, advanced step by step until it ends, then `fetch_run_results`. The emulator
   is `aoai-batch-mcp emulator` in a process of its own (as Azure is a service of its own; its time scale so
   high that a batch takes only the emulator's work), reached over loopback HTTP. Printed: the wall time from
   start_run to the merged results, the run's process's peak RSS (target <= 300 MB), the shards and how many
   waited for quota; then every row of the results is checked: each input row comes back once, in order.
2. The same shards one by one (a fresh child process): for each shard's rows, `build` (build_batch_file
   from that slice of the CSV, written beforehand), `upload`, `create`, polling until done, and `results`
   (fetch_results), one after another, on a fresh emulator process of the same settings. Printed: the sum
   of their times, and the ratio run / sum (target <= 1.2: the scheduler adds little).
3. Throughput of the run's pure parts against a bare read-and-parse loop of the same files (a fresh child):
   prepare_run_input vs reading the CSV with csv.DictReader; plan_shards vs orjson.loads over input.jsonl;
   merge_run_results vs orjson.loads over the input and every shard's results.

    python bench/runs.py [--requests 1000000] [--limit 1500000] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

# The checkout this script is in (its bench and tests packages too), whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aoai_batch.builder import build_batch_file
from aoai_batch.runs.merge import ShardResults, merge_run_results
from aoai_batch.runs.plan import plan_shards, prepare_run_input
from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from bench import emulated

DEPLOYMENTS = ["gpt-4o-mini", "gpt-4o"]
TEMPLATE = "Answer in one line: {text}"
MAX_STEPS = 10_000


def write_rows(path: Path, count: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "category"])
        for n in range(count):
            writer.writerow([f"row-{n}", f"What is item {n} used for?", ("tools", "food", "toys")[n % 3]])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


TIME_SCALE = 1_000_000  # emulated seconds per real second: validation and the per-request pace take no time
STEP_PAUSE = 0.2  # real seconds between two steps of the run (the scheduler polls a batch at most once a second)
KEY = "bench"


def emulator_process(home: Path, limit: int) -> contextlib.AbstractContextManager[str]:
    """`aoai-batch-mcp emulator` with both deployments' enqueued-token limits, in a process of its own; its URL."""
    limits = ",".join(f"{name}={limit}" for name in DEPLOYMENTS)
    return emulated.emulator_process(home, key=KEY, time_scale=TIME_SCALE, options=["--enqueued-tokens", limits])


def settings_for(home: Path, work: Path, url: str, limit: int) -> Settings:
    return Settings.model_validate(
        {
            "home": home,
            "provider": "emulator",
            "endpoint": url,
            "api_key": KEY,
            "workspace": str(work),
            "enqueued_tokens": dict.fromkeys(DEPLOYMENTS, limit),
        }
    )


# --- 1. the run ------------------------------------------------------------------------------------


async def run_phase(work: Path, requests: int, limit: int) -> dict[str, Any]:
    with emulator_process(work / "emulator-run", limit) as url:
        settings = settings_for(work / "home-run", work, url, limit)
        async with BatchService.open(settings) as main, RunService.open(settings, main) as runs:
            start = time.perf_counter()
            run = await runs.start_run(
                deployments=DEPLOYMENTS, source_path=work / "rows.csv", template=TEMPLATE, id_field="id"
            )
            started = time.perf_counter() - start
            most_queued = most_in_flight = steps = 0
            while not run.terminal and steps < MAX_STEPS:
                run = await runs.advance(run.id)
                counts = run.shard_counts
                in_flight = sum(counts.get(state, 0) for state in ("creating", "submitted"))
                most_in_flight = max(most_in_flight, in_flight)
                if in_flight:
                    most_queued = max(most_queued, counts.get("queued", 0))
                await anyio.sleep(STEP_PAUSE)
                steps += 1
            advanced = time.perf_counter() - start
            summary = await runs.fetch_run_results(run.id, output_dir=work / "run-results", preview=0)
            wall = time.perf_counter() - start
    rss = peak_rss_mb()
    shards = sum(run.shard_counts.values())
    checked = check_results(Path(str(summary.results_path)), requests)
    input_path = Path(run.input_path)
    ranges = plan_shards(
        input_path,
        max_requests=settings.max_requests,
        max_bytes=settings.max_bytes,
        max_tokens=limit,
        deployments=DEPLOYMENTS,
    )
    return {
        "status": run.status,
        "wall": wall,
        "start": started,
        "merge": wall - advanced,
        "rss_mb": rss,
        "shards": shards,
        "input_shards": len(ranges),
        "steps": steps,
        "most_in_flight": most_in_flight,
        "most_queued": most_queued,
        "succeeded": summary.counts.succeeded,
        "rows_checked": checked,
        "input_path": str(input_path),
        "ranges": [(r.first_line, r.line_count) for r in ranges],
    }


def check_results(path: Path, requests: int) -> int:
    """Every input row once, in order, answered (streamed: nothing kept)."""
    expected = 0
    with path.open("rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            if row["custom_id"] != f"row-{expected}" or row["status"] != "succeeded":
                raise SystemExit(f"results row {expected + 1} is {row['custom_id']} ({row['status']})")
            if row["source"]["id"] != row["custom_id"]:
                raise SystemExit(f"results row {expected + 1} has the source row of {row['source']['id']}")
            expected += 1
    if expected != requests:
        raise SystemExit(f"the results have {expected} rows, the input {requests}")
    return expected


# --- 2. the same shards one by one -----------------------------------------------------------------


def write_slices(work: Path, ranges: list[tuple[int, int]]) -> list[Path]:
    """Each shard's rows as a CSV of its own (the preparation a user would make; not timed)."""
    paths = [work / "slices" / f"slice-{n:03d}.csv" for n in range(len(ranges))]
    paths[0].parent.mkdir(exist_ok=True)
    with (work / "rows.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        for path, (_, count) in zip(paths, ranges, strict=True):
            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(header)
                for _ in range(count):
                    writer.writerow(next(reader))
    return paths


async def one_by_one_phase(work: Path, limit: int, ranges: list[tuple[int, int]]) -> dict[str, Any]:
    slices = write_slices(work, ranges)
    total = 0.0
    with emulator_process(work / "emulator-one", limit) as url:
        settings = settings_for(work / "home-one", work, url, limit)
        async with BatchService.open(settings) as service:
            for n, source in enumerate(slices):
                start = time.perf_counter()
                built = await anyio.to_thread.run_sync(
                    functools.partial(
                        build_batch_file,
                        deployment=DEPLOYMENTS[n % 2],
                        output_path=work / "slices" / f"slice-{n:03d}.jsonl",
                        source_path=source,
                        template=TEMPLATE,
                        id_field="id",
                        overwrite=True,
                        sources_home=service.sources_home,
                        **service.file_rules.keywords(),
                    )
                )
                uploaded = await service.upload_file(Path(built.files[0].path))
                batch = await service.create_batch(uploaded.file.id)
                while not batch.terminal:  # polled at the service's pace (settings.poll_seconds), as a run is
                    batch = await service.get_batch(batch.id, wait_seconds=50)
                await service.fetch_results(batch.id, output_dir=work / "one-results", preview=0, overwrite=True)
                total += time.perf_counter() - start
                if batch.status != "completed":
                    raise SystemExit(f"shard {n} ended {batch.status}")
    return {"sum": total, "rss_mb": peak_rss_mb()}


# --- 3. throughput of the pure parts ---------------------------------------------------------------


def bare_parse(paths: list[Path]) -> float:
    start = time.perf_counter()
    loads = orjson.loads
    for path in paths:
        with path.open("rb") as handle:
            for line in handle:
                loads(line)
    return time.perf_counter() - start


def throughput_phase(work: Path, input_path: Path) -> dict[str, Any]:
    start = time.perf_counter()
    with (work / "rows.csv").open(newline="", encoding="utf-8") as handle:
        for _ in csv.DictReader(handle):
            pass
    bare_csv = time.perf_counter() - start
    start = time.perf_counter()
    prepare_run_input(
        work / "prepare-again",
        deployment=DEPLOYMENTS[0],
        source_path=work / "rows.csv",
        template=TEMPLATE,
        id_field="id",
    )
    prepare = time.perf_counter() - start

    bare_input = bare_parse([input_path])
    start = time.perf_counter()
    plan_shards(input_path, max_requests=100_000, max_bytes=200_000_000, max_tokens=1_500_000, deployments=DEPLOYMENTS)
    plan = time.perf_counter() - start

    folders = sorted(path for path in input_path.parent.glob("shard-*") if path.is_dir())
    results = [next(folder.glob("*-results.jsonl")) for folder in folders]
    parts = [
        ShardResults(
            kind="input",
            results_path=path,
            errors_path=None,
            batch_id=path.name.removesuffix("-results.jsonl"),
            attempt=1,
        )
        for path in results
    ]
    bare_merge = bare_parse([input_path, *results])
    start = time.perf_counter()
    merge_run_results(
        parts,
        input_path=input_path,
        source_path=work / "rows.csv",
        output_dir=work / "merge-again",
        format="jsonl",
        preview=3,
        overwrite=True,
        run_id="run_bench",
        run_status="completed",
    )
    merge = time.perf_counter() - start
    return {
        "prepare": prepare,
        "bare_csv": bare_csv,
        "plan": plan,
        "bare_input": bare_input,
        "merge": merge,
        "bare_merge": bare_merge,
        "rss_mb": peak_rss_mb(),
    }


# --- the bench -------------------------------------------------------------------------------------


def child(phase: str, work: Path, requests: int, limit: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--work", str(work)]
    command += ["--requests", str(requests), "--limit", str(limit)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {phase} phase failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=1_500_000, help="each deployment's enqueued-token limit")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--phase", choices=("run", "one-by-one", "throughput"), default=None)
    args = parser.parse_args()
    if args.phase is not None:
        print(json.dumps(run_child_phase(args)))
        return
    with tempfile.TemporaryDirectory(dir=args.work) as folder:
        work = Path(folder)
        write_rows(work / "rows.csv", args.requests)
        run = child("run", work, args.requests, args.limit)
        (work / "ranges.json").write_text(json.dumps(run["ranges"]))
        one = child("one-by-one", work, args.requests, args.limit)
        parts = child("throughput", work, args.requests, args.limit)
    print(f"run of {args.requests:,} requests from a CSV over {', '.join(DEPLOYMENTS)} (limit {args.limit:,} each):")
    print(
        f"  {run['status']}: {run['shards']} shards ({run['input_shards']} of the input), at most "
        f"{run['most_in_flight']} in flight and {run['most_queued']} queued behind them; {run['steps']} steps"
    )
    print(f"  every row back once, in order, with its source columns: {run['rows_checked']:,} rows checked")
    print(
        f"  wall time, start_run to merged results: {run['wall']:.1f} s (start_run {run['start']:.1f} s, "
        f"fetch_run_results {run['merge']:.1f} s)"
    )
    print(f"  peak RSS of the run's process: {run['rss_mb']:.0f} MB (target <= 300 MB)")
    print(f"the same shards one by one (build, upload, create, results): {one['sum']:.1f} s")
    print(f"  peak RSS of that process: {one['rss_mb']:.0f} MB")
    print(f"  ratio run / one by one: {run['wall'] / one['sum']:.2f} (target <= 1.2)")
    print("throughput of the pure parts, as ratios to a bare read-and-parse of the same files:")
    print(f"  prepare_run_input / csv.DictReader over the rows: {parts['prepare'] / parts['bare_csv']:.2f}")
    print(f"  plan_shards / orjson.loads over input.jsonl: {parts['plan'] / parts['bare_input']:.2f}")
    print(
        f"  merge_run_results / orjson.loads over the input and the results: {parts['merge'] / parts['bare_merge']:.2f}"
    )


def run_child_phase(args: argparse.Namespace) -> dict[str, Any]:
    work: Path = args.work
    if args.phase == "run":
        return anyio.run(run_phase, work, args.requests, args.limit)
    ranges = [tuple(item) for item in json.loads((work / "ranges.json").read_text())]
    if args.phase == "one-by-one":
        return anyio.run(one_by_one_phase, work, args.limit, ranges)
    input_path = next((work / "home-run" / "runs").glob("run_*/input.jsonl"))
    return throughput_phase(work, input_path)


if __name__ == "__main__":
    main()
