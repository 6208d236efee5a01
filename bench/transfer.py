"""Upload and download of a ~200 MB batch file through BatchClient, against the emulator on loopback.

Prints the client's peak RSS (target <= 120 MB) and its throughput as a ratio to a bare `httpx2`
streaming upload and download of the same file to the same emulator, measured in the same run
(target >= 0.8). The emulator runs in its own process, and each side is measured in a fresh child
process, so each peak RSS is that client's alone.

    python bench/transfer.py [--megabytes 200] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from pydantic import SecretStr

from aoai_batch.client import BatchClient, Connection
from aoai_batch.limits import DEFAULT_FILE_EXPIRY_DAYS

KEY = "bench-key"
API_VERSION = "2024-10-21"
RSS_TARGET_MB = 120.0
RATIO_TARGET = 0.8


def make_file(path: Path, megabytes: float) -> int:
    """A valid batch file of about `megabytes` (decimal), with lines of about 1 KB."""
    target = int(megabytes * 1_000_000) - 2048
    padding = "lorem ipsum dolor sit amet " * 34
    written = 0
    with path.open("wb") as handle:
        n = 0
        while written < target:
            line = json.dumps(
                {
                    "custom_id": f"task-{n}",
                    "method": "POST",
                    "url": "/chat/completions",
                    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": padding}]},
                }
            ).encode()
            handle.write(line + b"\n")
            written += len(line) + 1
            n += 1
    return written


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"{url}/openai/batches?api-version={API_VERSION}", headers={"api-key": KEY}, timeout=1.0)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"the emulator did not start at {url}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# children: each measures one side in a fresh process


async def client_side(url: str, path: Path, out: Path) -> dict[str, float]:
    connection = Connection(
        backend="emulator", style="azure", endpoint=url, api_version=API_VERSION, api_key=SecretStr(KEY)
    )
    async with BatchClient(connection, poll_seconds=0.2) as client:
        await client.list_batches(limit=1)  # warm up: imports and connection outside the timing
        start = time.perf_counter()
        info = await client.upload_file(path, expires_after_days=DEFAULT_FILE_EXPIRY_DAYS, wait=False)
        upload = time.perf_counter() - start
        await client.wait_for_file(info)
        start = time.perf_counter()
        await client.download_file(info.id, out, overwrite=True)
        download = time.perf_counter() - start
        await client.delete_file(info.id)  # keeps the emulator's disk use the same for every round
    return {"upload_s": upload, "download_s": download, "rss_mb": peak_rss_mb()}


async def bare_side(url: str, path: Path, out: Path) -> dict[str, float]:
    headers = {"api-key": KEY}
    query = f"api-version={API_VERSION}"
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(600.0, connect=5.0)) as http:
        await http.get(f"{url}/openai/batches?{query}", headers=headers)
        start = time.perf_counter()
        with path.open("rb") as handle:
            response = await http.post(
                f"{url}/openai/files?{query}",
                headers=headers,
                data={"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "1209600"},
                files={"file": (path.name, handle, "application/jsonl")},
            )
        response.raise_for_status()
        upload = time.perf_counter() - start
        file_id = response.json()["id"]
        for _ in range(3000):  # until the emulator has processed the file
            answer = await http.get(f"{url}/openai/files/{file_id}?{query}", headers=headers)
            if answer.json()["status"] == "processed":
                break
            await anyio.sleep(0.2)
        start = time.perf_counter()
        async with http.stream("GET", f"{url}/openai/files/{file_id}/content?{query}", headers=headers) as stream:
            stream.raise_for_status()
            with out.open("wb") as handle:
                async for chunk in stream.aiter_bytes(1 << 20):
                    handle.write(chunk)
        download = time.perf_counter() - start
        await http.delete(f"{url}/openai/files/{file_id}?{query}", headers=headers)
    return {"upload_s": upload, "download_s": download, "rss_mb": peak_rss_mb()}


def child(side: str, url: str, path: Path, out: Path) -> None:
    run = client_side if side == "client" else bare_side
    result: dict[str, Any] = anyio.run(run, url, path, out)
    if out.stat().st_size != path.stat().st_size:
        raise SystemExit(f"{side}: downloaded {out.stat().st_size} bytes, expected {path.stat().st_size}")
    out.unlink()
    print(json.dumps(result))


def measure(side: str, url: str, path: Path, workdir: Path) -> dict[str, float]:
    out = workdir / f"{side}.download.jsonl"
    command = [sys.executable, __file__, "--child", side, "--url", url, "--file", str(path), "--out", str(out)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def start_emulator(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AOAI_EMULATOR_HOME": str(home), "AOAI_EMULATOR_KEY": KEY}
    command = [sys.executable, "-m", "server", "emulator", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=4, help="rounds in alternating order; each side's best counts")
    parser.add_argument("--child", choices=["client", "bare"])
    parser.add_argument("--url")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.file, args.out)
        return

    with tempfile.TemporaryDirectory(prefix="aoai-transfer-") as tmp:
        workdir = Path(tmp)
        source = workdir / "batch.jsonl"
        size = make_file(source, args.megabytes)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        emulator = start_emulator(workdir / "emulator", port)
        try:
            wait_for(url)
            results: dict[str, list[dict[str, float]]] = {"bare": [], "client": []}
            for round_number in range(args.rounds):
                order = ("bare", "client") if round_number % 2 == 0 else ("client", "bare")
                for side in order:
                    results[side].append(measure(side, url, source, workdir))
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)
    report(size, results)


def report(size: int, results: dict[str, list[dict[str, float]]]) -> None:
    mb = size / 1_000_000
    best = {
        side: {
            "upload_s": min(r["upload_s"] for r in runs),
            "download_s": min(r["download_s"] for r in runs),
            "rss_mb": max(r["rss_mb"] for r in runs),  # the worst peak
        }
        for side, runs in results.items()
    }
    client, bare = best["client"], best["bare"]
    print(f"file: {mb:.1f} MB, rounds: {len(results['client'])} (fastest time, highest peak RSS of each side)")
    for label, key in (("upload", "upload_s"), ("download", "download_s")):
        ratio = bare[key] / client[key]
        print(
            f"{label:8s} client {mb / client[key]:7.1f} MB/s   bare httpx2 {mb / bare[key]:7.1f} MB/s   "
            f"ratio {ratio:.2f} (target >= {RATIO_TARGET})"
        )
    total_ratio = (bare["upload_s"] + bare["download_s"]) / (client["upload_s"] + client["download_s"])
    print(f"round trip throughput ratio client/bare: {total_ratio:.2f} (target >= {RATIO_TARGET})")
    rss_ratio = client["rss_mb"] / bare["rss_mb"]
    print(
        f"peak RSS  client {client['rss_mb']:.1f} MB (target <= {RSS_TARGET_MB:.0f})   "
        f"bare httpx2 {bare['rss_mb']:.1f} MB   ratio {rss_ratio:.2f}"
    )


if __name__ == "__main__":
    main()
