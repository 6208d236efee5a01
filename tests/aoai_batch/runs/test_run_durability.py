"""A process advancing a run is killed with SIGKILL at the worst moments, then started again: the run ends
with every row, and no shard attempt was ever created twice on the service.

The killed process is a real one (the worktree's python running `RunService.work`) talking HTTP to an
emulator served from this test. The moments are found by watching real state: the emulator answers the
request in question (the file stored, the batch created, the results file served) but its answer is held
back (the `HeldAnswer` wrapper around the emulator's app), and the registry shows the shard in the state
that says so (`uploading`, `creating`, `collecting`); then the process is killed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import EmulatorSettings
from tests.support.batch_files import request_line, write_lines
from tests.support.cli import CLOUD_SETTINGS
from tests.support.http_server import ServerThread
from tests.support.paths import REPO_ROOT

WAIT = 60.0  # real seconds any wait for the other process may last before the test fails
REQUESTS = 25  # three shards of at most 10 requests
DRIVER = """
import sys
from pathlib import Path

import anyio

from aoai_batch.runs.service import RunService
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings


async def main() -> None:
    settings = Settings()
    async with BatchService.open(settings) as service, RunService.open(settings, service) as runs:
        if sys.argv[1] == "start":
            await runs.start_run(deployments=["gpt-4o-mini"], batch_path=Path(sys.argv[2]))
        await runs.work()
        for run in (await runs.list_runs()).runs:
            await runs.fetch_run_results(run.id, output_dir=settings.home / "out", overwrite=True)


anyio.run(main)
"""

Rule = Callable[[str, str], bool]


class HeldAnswer:
    """Lets the emulator do the request a rule picks, then keeps its answer until the client goes away."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.rule: Rule | None = None
        self.reached = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.rule
        if scope["type"] != "http" or rule is None or not rule(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        self.rule = None  # only the first such request is held

        async def swallow(message: Message) -> None:
            pass

        await self.app(scope, receive, swallow)
        self.reached.set()
        while (await receive())["type"] != "http.disconnect":
            pass


POINTS: dict[str, tuple[Rule, str]] = {
    "during upload": (lambda method, path: method == "POST" and path.endswith("/files"), "uploading"),
    "after create, before the registry write": (
        lambda method, path: method == "POST" and path.endswith("/batches"),
        "creating",
    ),
    "during results": (lambda method, path: method == "GET" and path.endswith("/content"), "collecting"),
}


@pytest.fixture
def served(emulator_settings: EmulatorSettings, fake_clock: FakeClock) -> Iterator[tuple[str, HeldAnswer]]:
    emulator = Emulator(emulator_settings, clock=fake_clock)
    held = HeldAnswer(emulator.app)
    with ServerThread(held, emulator) as running:
        yield running.url, held


def driver_env(home: Path, url: str, key: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in CLOUD_SETTINGS}
    env.update(
        AOAI_BATCH_HOME=str(home),
        AOAI_BATCH_WORKSPACE=str(home.parent),
        AOAI_BATCH_PROVIDER="emulator",
        AZURE_OPENAI_ENDPOINT=url,
        AZURE_OPENAI_API_KEY=key,
        AOAI_BATCH_MAX_REQUESTS="10",
        AOAI_BATCH_POLL_SECONDS="0.05",
    )
    return env


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as connection:
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the table is not made yet
            return []


def shard_states(home: Path) -> list[str]:
    return [str(state) for (state,) in rows(home / "state.sqlite3", "SELECT state FROM run_shards")]


def emulator_batch_keys(emulator_home: Path) -> list[str]:
    found = rows(emulator_home / "state.sqlite3", "SELECT data FROM batches")
    return [json.loads(str(data))["metadata"]["idempotency_key"] for (data,) in found]


def wait_until(what: str, condition: Callable[[], bool], clock: FakeClock) -> None:
    """Poll real state, moving the emulator's clock so batches go on meanwhile."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        clock.advance(600)
        time.sleep(0.05)  # polling another process's state, not timing anything


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The driver in a process of its own; what it says goes to `log`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, *args], env=env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT
        )


@pytest.mark.parametrize("point", list(POINTS))
def test_a_run_killed_at_any_point_resumes_with_no_shard_submitted_twice(
    point: str,
    served: tuple[str, HeldAnswer],
    emulator_settings: EmulatorSettings,
    fake_clock: FakeClock,
    tmp_path: Path,
) -> None:
    url, held = served
    rule, state = POINTS[point]
    home = tmp_path / "home"
    env = driver_env(home, url, "test-key")
    source = write_lines(tmp_path / "rows.jsonl", *(request_line(f"task-{n}", f"q {n}") for n in range(REQUESTS)))
    held.rule = rule

    first = start(["start", str(source)], env, tmp_path / "first.log")
    try:
        wait_until(f"the held answer ({point})", held.reached.is_set, fake_clock)
        wait_until(f"a shard in {state}", lambda: state in shard_states(home), fake_clock)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()  # reaped: the restart sees that the lease's owner is gone
    assert first.returncode == -signal.SIGKILL
    if state == "creating":
        assert len(emulator_batch_keys(emulator_settings.home)) == 1  # created, but the registry does not know it

    second = start(["resume"], env, tmp_path / "second.log")
    try:
        wait_until("the resumed run to end", lambda: second.poll() is not None, fake_clock)
    finally:
        if second.poll() is None:
            second.kill()
        second.wait()
    assert second.returncode == 0, (tmp_path / "second.log").read_text()

    (run_id,) = [str(value) for (value,) in rows(home / "state.sqlite3", "SELECT id FROM runs")]
    keys = emulator_batch_keys(emulator_settings.home)
    assert sorted(keys) == [f"{run_id}-s{index}-a1" for index in range(3)]  # each shard once
    assert shard_states(home) == ["done"] * 3
    results = (home / "out" / f"{run_id}-results.jsonl").read_bytes().splitlines()
    answered = [json.loads(line) for line in results]
    assert [row["custom_id"] for row in answered] == [f"task-{n}" for n in range(REQUESTS)]
    assert {row["status"] for row in answered} == {"succeeded"}
