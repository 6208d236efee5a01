"""`aoai-batch-mcp emulator` as a real process, and the default pace of the emulated clock."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from openai import AzureOpenAI

from aoai_batch.emulator.lifecycle import Timings
from aoai_batch.settings import EmulatorSettings
from tests.support.clients import API_VERSION

REAL_SECONDS_FOR_25_REQUESTS = 10.0
LINES = b"".join(
    b'{"custom_id": "r%d", "method": "POST", "url": "/chat/completions", '
    b'"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}\n' % i
    for i in range(50)
)


def test_default_pace_completes_a_25_request_batch_within_ten_real_seconds() -> None:
    timings = Timings(EmulatorSettings())
    total = timings.validation + timings.processing(25) + timings.finalizing
    assert 0 < total <= REAL_SECONDS_FOR_25_REQUESTS
    assert timings.window("24h") > total


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_emulator_command_serves_the_api_and_stops_on_ctrl_c_or_sigterm_while_batches_run(
    tmp_path: Path, stop: signal.Signals
) -> None:
    # A batch in progress keeps the emulator's background thread busy while it is told to stop: uvicorn's
    # re-raised signal used to cut through that close (SIGTERM killed the process, SIGINT could hang it).
    batch_file = tmp_path / "input.jsonl"
    batch_file.write_bytes(LINES)
    env = {**os.environ, "AOAI_EMULATOR_KEY": "cli-key", "AOAI_EMULATOR_TIME_SCALE": "20"}
    command = [sys.executable, "-m", "server", "emulator", "--port", "0", "--home", str(tmp_path / "home")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert match is not None
        client = AzureOpenAI(azure_endpoint=match.group(0), api_key="cli-key", api_version=API_VERSION, max_retries=5)
        with client, batch_file.open("rb") as handle:
            assert client.batches.list().data == []
            uploaded = client.files.create(file=handle, purpose="batch")
            client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/chat/completions",  # type: ignore[arg-type]  # Azure's path; the SDK types only OpenAI's /v1/...
                completion_window="24h",
            )
        assert "cli-key" not in first
    finally:
        process.send_signal(stop)
        try:
            _, err = process.communicate(timeout=30)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Traceback" not in err


def test_emulator_command_refuses_bad_settings(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "server", "emulator", "--port", "0", "--faults", "teapot:1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr
