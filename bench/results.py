"""Joining a 100,000-request batch's output and error files to its input.

Prints the join's time as a ratio to a bare loop that reads and parses the output and error files once
(target <= 2.0), and the join's peak RSS next to the bare loop's (target <= 200 MB). Each peak RSS is
measured in a fresh child process so neither side inherits the other's memory.

    python bench/results.py [--requests 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from aoai_batch.results.join import join_results

FAIL_SHARE = 0.03  # the rest succeed, in a shuffled order (Azure does not keep the input's order)
FILTER = {"filtered": False, "severity": "safe"}


def request(n: int) -> bytes:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are an AI assistant that helps people find information."},
            {"role": "user", "content": f"Question {n}: summarise the history of item {n} in two sentences."},
        ],
        "max_tokens": 200,
    }
    return orjson.dumps({"custom_id": f"task-{n}", "method": "POST", "url": "/chat/completions", "body": body})


def answer(n: int) -> bytes:
    """An output line in Azure's shape (seed 003): content filter results on the choice and the prompt."""
    filters = {"hate": FILTER, "self_harm": FILTER, "sexual": FILTER, "violence": FILTER}
    body = {
        "choices": [
            {
                "content_filter_results": filters,
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "message": {"content": f"Item {n} was first described in 1975. " * 6, "role": "assistant"},
            }
        ],
        "created": 1722477079,
        "id": f"chatcmpl-{n:024d}",
        "model": "gpt-4o-mini-2024-07-18",
        "object": "chat.completion",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}],
        "system_fingerprint": "fp_a9bfe9d51d",
        "usage": {"completion_tokens": 60, "prompt_tokens": 40, "total_tokens": 100},
    }
    response = {"body": body, "request_id": f"{n:08d}-b648-4b67-addc-862ba067d442", "status_code": 200}
    return orjson.dumps({"custom_id": f"task-{n}", "response": response, "error": None})


def failure(n: int) -> bytes:
    error = {"code": "content_filter", "message": "The response was filtered due to the prompt."}
    response = {"body": {"error": error}, "request_id": f"{n:08d}-b648", "status_code": 400}
    return orjson.dumps({"custom_id": f"task-{n}", "response": response, "error": None})


def generate(folder: Path, requests: int) -> tuple[Path, Path, Path]:
    rng = random.Random(7)
    order = list(range(requests))
    rng.shuffle(order)
    failed = set(rng.sample(range(requests), int(requests * FAIL_SHARE)))
    paths = folder / "input.jsonl", folder / "output.jsonl", folder / "errors.jsonl"
    with paths[0].open("wb") as inputs, paths[1].open("wb") as outputs, paths[2].open("wb") as errors:
        for n in range(requests):
            inputs.write(request(n) + b"\n")
        for n in order:
            if n in failed:
                errors.write(failure(n) + b"\n")
            else:
                outputs.write(answer(n) + b"\n")
    return paths


def bare_loop(*paths: Path) -> int:
    """The baseline: read and parse the output and error files once, nothing else."""
    parsed = 0
    for path in paths:
        with path.open("rb") as handle:
            for line in handle:
                orjson.loads(line)
                parsed += 1
    return parsed


def join(folder: Path, tag: str) -> None:
    results, retry = folder / f"results-{tag}.jsonl", folder / f"retry-{tag}.jsonl"
    join_results(
        folder / "input.jsonl",
        output_path=folder / "output.jsonl",
        error_path=folder / "errors.jsonl",
        results_path=results,
        retry_path=retry,
        overwrite=True,
    )


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def peak_rss_mb(mode: str, folder: Path) -> float:
    """Run one side in a fresh process and return its peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip())


def child(mode: str, folder: Path) -> None:
    if mode == "bare":
        bare_loop(folder / "output.jsonl", folder / "errors.jsonl")
    else:
        join(folder, "rss")
    print(f"{peak_rss_kb() / 1024:.1f}")


def peak_rss_kb() -> int:
    """This process's peak RSS. VmHWM where there is /proc: ru_maxrss survives exec, so a child would
    report its parent's peak if that was higher."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = generate(folder, args.requests)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths)
        print(f"files: {args.requests} requests; {sizes}")
        bare_loop(*paths)  # warm the page cache for every side alike
        bare, every, joins = [], [], []
        for i in range(args.repeat):  # interleaved, so a busy moment slows every side alike
            bare.append(timed(bare_loop, paths[1], paths[2]))
            joins.append(timed(join, folder, str(i)))
            every.append(timed(bare_loop, *paths))
        # On a shared machine the speed drifts: each join is compared with the bare loops timed beside it.
        to_bare = statistics.median(j / b for j, b in zip(joins, bare, strict=True))
        to_every = statistics.median(j / e for j, e in zip(joins, every, strict=True))
        print(f"bare loop, output + errors parsed once:         {min(bare):.3f} s (best of {args.repeat})")
        print(f"bare loop, input + output + errors parsed once: {min(every):.3f} s")
        print(f"join_results:                                   {min(joins):.3f} s")
        print(f"ratio to output + errors: {to_bare:.2f} (target <= 2.0); to all three files: {to_every:.2f}")
        print(f"(medians of the {args.repeat} paired ratios; best times' ratio {min(joins) / min(bare):.2f})")
        bare_mb, join_mb = peak_rss_mb("bare", folder), peak_rss_mb("join", folder)
        print(
            f"peak RSS: join {join_mb:.0f} MB (target <= 200 MB); bare loop {bare_mb:.0f} MB; "
            f"ratio {join_mb / bare_mb:.2f}"
        )


if __name__ == "__main__":
    main()
