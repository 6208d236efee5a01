"""Benchmark: the emulator's echo engine on a 100,000-request batch, and its memory for a 200 MB round trip.

1. Throughput: a batch of `--requests` chat requests runs through the in-process emulator (clock moved by
   hand, so only the work is measured: read each line, answer it, count its tokens, write the output
   line). Baseline: a bare loop that reads each input line, parses it with orjson and writes an output line
   in Azure's shape (content filters, usage, ids: about 1 KB, the size the emulator writes) built as a dict
   and serialised with orjson. (It used to write the input line back, about 280 bytes: a quarter of the
   I/O and serialising; that copy loop is still measured and its ratio printed, for reference.) The loops
   and the emulator run interleaved `--repeat` times; medians are printed (the ratio is the median of each
   round's ratio), as the machine may be shared. Targets: >= 20,000 requests/s and ratio >= 0.5.
2. Memory: `aoai-batch-mcp emulator` in a subprocess receives a `--upload-mb` file (streamed multipart)
   and serves it back (streamed); its peak RSS (VmHWM) is compared with its RSS when idle.
   Target: peak <= 150 MB.

    python bench/emulator.py [--requests 100000] [--upload-mb 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
import orjson

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import EmulatorSettings

QUESTIONS = [
    "When was Microsoft founded?",
    "Summarise the plot of Hamlet in two sentences.",
    "What is the capital of Australia, and why was it chosen?",
    "Translate 'good morning' into French, German and Japanese.",
]
Q = {"api-version": "2024-10-21"}


def write_requests(path: Path, count: int) -> None:
    with path.open("wb") as out:
        for i in range(count):
            line = {
                "custom_id": f"task-{i}",
                "method": "POST",
                "url": "/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [
                        {"role": "system", "content": "You are an AI assistant that helps people find information."},
                        {"role": "user", "content": f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"},
                    ],
                    "max_tokens": 200,
                },
            }
            out.write(orjson.dumps(line) + b"\n")


SAFE = {"filtered": False, "severity": "safe"}
FILTERS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
PROMPT_FILTERS = [
    {"prompt_index": 0, "content_filter_results": {**FILTERS, "jailbreak": {"filtered": False, "detected": False}}}
]


def bare_loop(source: Path, target: Path) -> float:
    """Requests/s of reading and parsing each line and writing an answer line in Azure's shape (its content
    echoed, usage from lengths): the least any emulator must do."""
    start = time.perf_counter()
    count = 0
    created = int(time.time())
    with source.open("rb") as lines, target.open("wb") as out:
        for line in lines:
            request = orjson.loads(line)
            reply = "Echo: " + request["body"]["messages"][-1]["content"]
            request_id = f"bare-{count:012x}"
            message = {"content": reply, "refusal": None, "role": "assistant"}
            choice = {"content_filter_results": FILTERS, "finish_reason": "stop", "index": 0, "logprobs": None}
            prompt_tokens, completion_tokens = len(line) // 4, len(reply) // 4
            body = {
                "choices": [{**choice, "message": message}],
                "created": created,
                "id": f"chatcmpl-{request_id}",
                "model": "gpt-4o-mini-2024-07-18",
                "object": "chat.completion",
                "prompt_filter_results": PROMPT_FILTERS,
                "system_fingerprint": "fp_emulator",
                "usage": {
                    "completion_tokens": completion_tokens,
                    "prompt_tokens": prompt_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
            response = {"body": body, "request_id": request_id, "status_code": 200}
            answer = {"custom_id": request["custom_id"], "response": response, "error": None}
            out.write(orjson.dumps(answer, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count / (time.perf_counter() - start)


def copy_loop(source: Path, target: Path) -> float:
    """Requests/s of reading, parsing and writing back each input line (the former, lighter baseline)."""
    start = time.perf_counter()
    count = 0
    with source.open("rb") as lines, target.open("wb") as out:
        for line in lines:
            out.write(orjson.dumps(orjson.loads(line)) + b"\n")
            count += 1
    return count / (time.perf_counter() - start)


async def emulator_run(source: Path, home: Path, count: int) -> tuple[float, int]:
    """Requests/s of the echo engine, from in_progress to completed (validation excluded), and the output's size."""
    clock = FakeClock()
    settings = EmulatorSettings(home=home, time_scale=1.0, key="bench")
    async with Emulator(settings, clock=clock) as emulator:
        headers = {"api-key": emulator.key}
        transport = emulator.transport()
        async with httpx2.AsyncClient(transport=transport, base_url="http://emu", headers=headers) as http:
            with source.open("rb") as handle:
                files = {"file": ("in.jsonl", handle, "application/jsonl")}
                uploaded = (await http.post("/openai/files", params=Q, data={"purpose": "batch"}, files=files)).json()
            body = {"input_file_id": uploaded["id"], "endpoint": "/chat/completions", "completion_window": "24h"}
            batch = (await http.post("/openai/batches", params=Q, json=body)).json()
            clock.advance(settings.validation_seconds)
            await http.get(f"/openai/batches/{batch['id']}", params=Q)  # validation, not measured
            clock.advance(10 * 86_400)
            start = time.perf_counter()
            done = (await http.get(f"/openai/batches/{batch['id']}", params=Q)).json()
            elapsed = time.perf_counter() - start
            output = await http.get(f"/openai/files/{done['output_file_id']}", params=Q)
    if done["status"] != "completed" or done["request_counts"]["completed"] != count:
        raise SystemExit(f"the batch did not complete: {done['status']} {done['request_counts']}")
    return count / elapsed, output.json()["bytes"]


def throughput(work: Path, count: int, repeat: int) -> None:
    source = work / "requests.jsonl"
    write_requests(source, count)
    emulator: list[float] = []
    bare: list[float] = []
    copy: list[float] = []
    for turn in range(repeat):
        target = work / f"bare-{turn}.jsonl"
        bare.append(bare_loop(source, target))
        bare_bytes = target.stat().st_size
        target.unlink()
        copy.append(copy_loop(source, target))
        target.unlink()
        rate, emulator_bytes = anyio.run(emulator_run, source, work / f"home-{turn}", count)
        emulator.append(rate)
    ratios = [e / b for e, b in zip(emulator, bare, strict=True)]
    copy_ratio = statistics.median(e / c for e, c in zip(emulator, copy, strict=True))
    print(f"echo engine: {statistics.median(emulator):,.0f} requests/s ({count:,} requests, median of {repeat})")
    print(f"bare read-parse-write loop (Azure-shaped lines): {statistics.median(bare):,.0f} requests/s")
    print(f"bytes per output line: emulator {emulator_bytes / count:,.0f}, bare loop {bare_bytes / count:,.0f}")
    print(
        f"ratio emulator / bare loop: {statistics.median(ratios):.2f} "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.5; target >= 20,000 requests/s)"
    )
    print(
        f"for reference, a loop writing each input line back: {statistics.median(copy):,.0f} requests/s; "
        f"ratio emulator / it: {copy_ratio:.2f}"
    )


def rss_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise SystemExit(f"/proc/{pid}/status has no {field}")
    return int(match.group(1))


def start_server(home: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "AOAI_EMULATOR_KEY": "bench"}
    command = [sys.executable, "-m", "server", "emulator", "--port", "0", "--home", str(home)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdout is not None
    first = server.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", first)
    if match is None:
        server.kill()
        raise SystemExit(f"the emulator did not start: {first!r}")
    url = match.group(0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"{url}/openai/batches", params=Q, headers={"api-key": "bench"})
            return server, url
        except httpx2.TransportError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("the emulator did not answer")


def memory(work: Path, megabytes: int) -> None:
    big = work / "big.jsonl"
    write_requests(big, 10)
    line = big.read_bytes().splitlines(keepends=True)[0]
    with big.open("wb") as out:
        out.write(line * (megabytes * 1_000_000 // len(line)))
    server, url = start_server(work / "memory-home")
    try:
        idle = rss_kb(server.pid, "VmRSS")
        with httpx2.Client(base_url=url, headers={"api-key": "bench"}, timeout=600) as http, big.open("rb") as handle:
            files = {"file": ("big.jsonl", handle, "application/jsonl")}
            uploaded = http.post("/openai/files", params=Q, data={"purpose": "batch"}, files=files).json()
            url = f"/openai/files/{uploaded['id']}/content"
            with http.stream("GET", url, params=Q) as response, (work / "back.jsonl").open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        peak = rss_kb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(30)
    same = (work / "back.jsonl").stat().st_size == big.stat().st_size
    size = big.stat().st_size / 1e6
    print(f"peak RSS for a {size:.0f} MB upload + download: {peak / 1024:.0f} MB (target <= 150 MB)")
    print(f"idle RSS of the same server: {idle / 1024:.0f} MB; ratio peak / idle: {peak / idle:.2f}")
    if not same:
        raise SystemExit("the downloaded file differs in size from the uploaded one")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        throughput(Path(tmp), args.requests, args.repeat)
        memory(Path(tmp), args.upload_mb)


if __name__ == "__main__":
    main()
