"""Peak RSS of a whole `aoai-batch-mcp upload FILE` process (it validates first), on the embedded emulator.

The baseline, measured in the same run, is a bare process that uploads the same file through the `openai`
SDK (an open file object, so the SDK streams it) to the same in-process emulator, with no validation:
what any upload to the embedded emulator costs. Each measurement is a fresh child process and its peak
RSS is the kernel's (`ru_maxrss` from `wait4`), so nothing of the parent is counted. Prints both peaks,
their ratio, and the CLI's absolute peak (target <= 100 MB on a 150 MB file).

    python bench/upload_memory.py [--lines 100000] [--line-bytes 1500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The same realistic chat lines as bench/validate.py.
from validate import generate

TARGET_MB = 100.0

BARE = """
import sys
from pathlib import Path

import anyio
import openai

from aoai_batch.emulator import Emulator
from aoai_batch.settings import EmulatorSettings


async def main(path: Path, home: Path) -> None:
    async with Emulator(EmulatorSettings(home=home)) as emulator:
        http = openai.DefaultAsyncHttpxClient(transport=emulator.transport(), timeout=600.0)
        api = openai.AsyncAzureOpenAI(
            azure_endpoint="http://emulator", api_version="2024-10-21", api_key=emulator.key, http_client=http
        )
        with path.open("rb") as handle:
            await api.files.create(file=(path.name, handle, "application/jsonl"), purpose="batch")
        await api.close()


anyio.run(main, Path(sys.argv[1]), Path(sys.argv[2]))
"""


def peak_rss_mb(command: list[str], env: dict[str, str]) -> float:
    """Run `command` to its end and return its peak RSS in MB (Linux reports KiB)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    _, status, usage = os.wait4(proc.pid, 0)
    errors = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[1:3]} failed:\n{errors}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--line-bytes", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternating; the lowest peak counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aoai-upload-") as tmp:
        folder = Path(tmp)
        path = folder / "batch.jsonl"
        generate(path, args.lines, args.line_bytes)
        size_mb = path.stat().st_size / 1e6
        bare_script = folder / "bare_upload.py"
        bare_script.write_text(BARE)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AZURE_OPENAI_", "OPENAI_", "AOAI_BATCH_", "AOAI_EMULATOR_"))
        }
        peaks: dict[str, list[float]] = {"bare": [], "cli": []}
        for run in range(args.repeat):
            # A fresh home each run: the emulator's files stay on disk and must not pile up.
            home = folder / f"home-{run}"
            cli_env = {**env, "AOAI_BATCH_HOME": str(home / "cli"), "AOAI_BATCH_WORKSPACE": str(folder)}
            sides = {
                "bare": ([sys.executable, str(bare_script), str(path), str(home / "bare")], env),
                "cli": ([sys.executable, "-m", "server", "upload", str(path)], cli_env),
            }
            for side in ("bare", "cli") if run % 2 == 0 else ("cli", "bare"):
                command, side_env = sides[side]
                peaks[side].append(peak_rss_mb(command, side_env))
    bare, cli = min(peaks["bare"]), min(peaks["cli"])
    print(f"file: {args.lines} lines, {size_mb:.0f} MB")
    print(f"bare SDK upload to the embedded emulator: peak RSS {bare:.1f} MB (runs: {_runs(peaks['bare'])})")
    print(f"aoai-batch-mcp upload (validates first):  peak RSS {cli:.1f} MB (runs: {_runs(peaks['cli'])})")
    print(f"ratio cli/bare: {cli / bare:.2f}   cli peak {cli:.1f} MB (target <= {TARGET_MB:.0f} MB)")


def _runs(values: list[float]) -> str:
    return ", ".join(f"{value:.0f}" for value in values)


if __name__ == "__main__":
    main()
