"""Start-up time of `aoai-batch-mcp serve` over stdio, as a client sees it.

Measures spawn -> `initialize` answered -> `tools/list` answered, median of several runs, and prints it with
its ratio to a minimal MCPServer with one tool, measured in the same run, interleaved (target <= 1.15).
Plain JSON-RPC over the pipes, so the client side costs nothing.

    python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("baseline")


@server.tool()
def echo(text: str) -> str:
    \"\"\"Return the text.\"\"\"
    return text


server.run()
"""

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


def send(proc: subprocess.Popen[bytes], message: dict[str, object]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def read_response(proc: subprocess.Popen[bytes], request_id: int) -> dict[str, object]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server exited before answering request {request_id}")
        message = json.loads(line)
        if message.get("id") == request_id:
            return message


def time_one(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds from spawn to the tools/list answer, and how many tools it listed."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        send(proc, INITIALIZE)
        read_response(proc, 1)
        send(proc, INITIALIZED)
        send(proc, TOOLS_LIST)
        answer = read_response(proc, 2)
        elapsed = time.perf_counter() - start
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result = answer.get("result")
    tools = result.get("tools", []) if isinstance(result, dict) else []
    return elapsed, len(tools)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline_script = Path(tmp) / "baseline.py"
        baseline_script.write_text(BASELINE)
        env = dict(os.environ)
        env.update({"AOAI_BATCH_HOME": f"{tmp}/home", "AOAI_BATCH_WORKSPACE": f"{tmp}/ws"})
        for name in ("AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY", "AOAI_BATCH_PROVIDER"):
            env.pop(name, None)
        ours_cmd = [sys.executable, "-m", "server", "serve"]
        base_cmd = [sys.executable, str(baseline_script)]
        time_one(ours_cmd, env)  # warm the file system cache and .pyc files for both
        time_one(base_cmd, env)
        ours: list[float] = []
        base: list[float] = []
        tools = 0
        for _ in range(args.runs):
            elapsed, tools = time_one(ours_cmd, env)
            ours.append(elapsed)
            base.append(time_one(base_cmd, env)[0])
    ours_median, base_median = statistics.median(ours), statistics.median(base)
    print(f"aoai-batch-mcp serve (stdio, {tools} tools): median {ours_median * 1000:.0f} ms over {args.runs} runs")
    print(f"minimal MCPServer, one tool:             median {base_median * 1000:.0f} ms over {args.runs} runs")
    print(f"ratio: {ours_median / base_median:.3f} (target <= 1.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
