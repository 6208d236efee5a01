"""The emulator as a process of its own, for benches that measure other processes against one shared Azure
stand-in (`aoai-batch-mcp emulator`)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


@contextlib.contextmanager
def emulator_process(home: Path, *, key: str, time_scale: float, options: Sequence[str] = ()) -> Iterator[str]:
    """`aoai-batch-mcp emulator` on a free loopback port, its clock `time_scale` times real time; its URL."""
    command = [sys.executable, "-m", "server", "emulator", "--port", "0", "--home", str(home)]
    command += ["--time-scale", str(time_scale), *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "AOAI_EMULATOR_KEY": key})
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        if match is None:
            raise SystemExit(f"the emulator did not start: {first!r}")
        yield match.group(0)
    finally:
        server.terminate()
        server.wait(timeout=30)
