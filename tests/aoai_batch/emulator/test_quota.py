"""The enqueued-token quota, through the real SDK: a deployment's batches not yet terminal hold their file's
tokens; over the limit, a create is refused (`fail_fast`) or the batch fails in validation (`validate`)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.emulator.quota import file_tokens
from aoai_batch.emulator.state import SCHEMA
from aoai_batch.errors import InvalidRequest
from aoai_batch.quota import TOKEN_LIMIT_EXCEEDED, limit_named_in
from aoai_batch.service import BatchService
from aoai_batch.settings import EmulatorSettings, Settings
from tests.support.batch_files import request_line, write_batch_file, write_lines
from tests.support.clients import API_VERSION, azure_client, upload
from tests.support.clock import DONE, VALIDATION

Client = openai.AsyncAzureOpenAI
# request_line("task-3", "question 3"): 3 tokens per message + 3 to prime the reply, then characters / 4,
# rounded up, of each text: "user" (1) and "question 3" (3). Tokens in the file: 10 per request.
TOKENS_PER_REQUEST = 10


@asynccontextmanager
async def running(tmp_path: Path, clock: FakeClock, **settings: Any) -> AsyncIterator[Client]:
    emulator_settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, **settings)
    async with (
        Emulator(emulator_settings, clock=clock) as emulator,
        azure_client("http://emu", emulator.key, emulator.transport()) as client,
    ):
        yield client


async def uploaded(client: Client, folder: Path, name: str, requests: int, model: str = "gpt-4o-mini") -> str:
    return await upload(client, write_batch_file(folder / f"{name}.jsonl", count=requests, model=model))


async def create(client: Client, file_id: str) -> openai.types.Batch:
    # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
    return await client.batches.create(input_file_id=file_id, endpoint="/chat/completions", completion_window="24h")  # type: ignore[arg-type]


async def refused(client: Client, file_id: str) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        await create(client, file_id)
    return caught.value


async def test_fail_fast_refuses_a_create_past_the_limit_until_a_batch_ends(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    limit = 15 * TOKENS_PER_REQUEST  # room for the first batch (10 requests), not for both
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock, enqueued_tokens={"gpt-4o-mini": limit}) as client:
            first = await create(client, await uploaded(client, tmp_path, "first", 10))
            second_file = await uploaded(client, tmp_path, "second", 10)
            error = await refused(client, second_file)
            fake_clock.advance(DONE)  # the first batch completes: its tokens are freed
            second = await create(client, second_file)
            done = await client.batches.retrieve(first.id)
    assert error.status_code == 400
    assert error.code == TOKEN_LIMIT_EXCEEDED
    assert "gpt-4o-mini" in error.message
    assert limit_named_in(error.message) == limit
    assert "configured limit of 150" in error.message
    assert done.status == "completed"
    assert second.status == "validating"


async def test_validate_mode_accepts_the_batch_and_fails_it_in_validation(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    limit = 15 * TOKENS_PER_REQUEST
    settings = {"enqueued_tokens": {"gpt-4o-mini": limit}, "quota_mode": "validate"}
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock, **settings) as client:
            first = await create(client, await uploaded(client, tmp_path, "first", 10))
            second_file = await uploaded(client, tmp_path, "second", 10)
            second = await create(client, second_file)
            fake_clock.advance(VALIDATION)
            failed = await client.batches.retrieve(second.id)
            running_first = await client.batches.retrieve(first.id)
            fake_clock.advance(DONE)
            again = await create(client, second_file)  # the first has completed: now it fits
            fake_clock.advance(DONE)
            completed = await client.batches.retrieve(again.id)
    assert second.status == "validating"
    assert failed.status == "failed"
    assert failed.errors is not None
    codes = [(e.code, limit_named_in(e.message or "")) for e in failed.errors.data or []]
    assert codes == [(TOKEN_LIMIT_EXCEEDED, limit)]
    assert running_first.status == "in_progress"
    assert completed.status == "completed"


@pytest.mark.parametrize("mode", ["fail_fast", "validate"])
async def test_a_batch_larger_than_the_limit_alone_never_fits(tmp_path: Path, fake_clock: FakeClock, mode: str) -> None:
    settings = {"enqueued_tokens": {"gpt-4o-mini": 5 * TOKENS_PER_REQUEST}, "quota_mode": mode}
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock, **settings) as client:
            file_id = await uploaded(client, tmp_path, "big", 6)
            if mode == "fail_fast":
                message = (await refused(client, file_id)).message
            else:
                batch = await create(client, file_id)
                fake_clock.advance(DONE)
                failed = await client.batches.retrieve(batch.id)
                assert failed.status == "failed"
                assert failed.errors is not None
                assert [e.code for e in failed.errors.data or []] == [TOKEN_LIMIT_EXCEEDED]
                message = (failed.errors.data or [])[0].message or ""
    assert "60 tokens alone" in message
    assert limit_named_in(message) == 50


async def test_deployments_count_apart_and_one_without_a_limit_has_none(tmp_path: Path, fake_clock: FakeClock) -> None:
    limits = {"gpt-4o-mini": 10 * TOKENS_PER_REQUEST, "gpt-4o": 10 * TOKENS_PER_REQUEST}
    settings = {"enqueued_tokens": limits, "deployments": "gpt-4o-mini=m,gpt-4o=o,gpt-35=t"}
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock, **settings) as client:
            await create(client, await uploaded(client, tmp_path, "mini", 10))
            error = await refused(client, await uploaded(client, tmp_path, "mini-more", 1))
            other = await create(client, await uploaded(client, tmp_path, "o", 10, model="gpt-4o"))
            unlimited = [
                await create(client, await uploaded(client, tmp_path, f"t{n}", 50, model="gpt-35")) for n in range(3)
            ]
    assert error.code == TOKEN_LIMIT_EXCEEDED
    assert "gpt-4o-mini" in error.message
    assert other.status == "validating"
    assert [b.status for b in unlimited] == ["validating"] * 3


async def test_a_cancelled_batch_holds_its_tokens_until_it_is_cancelled(tmp_path: Path, fake_clock: FakeClock) -> None:
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock, enqueued_tokens={"gpt-4o-mini": 100}) as client:
            first = await create(client, await uploaded(client, tmp_path, "first", 10))
            second_file = await uploaded(client, tmp_path, "second", 10)
            cancelling = await client.batches.cancel(first.id)
            while_cancelling = await refused(client, second_file)
            fake_clock.advance(DONE)
            second = await create(client, second_file)
    assert cancelling.status == "cancelling"
    assert while_cancelling.code == TOKEN_LIMIT_EXCEEDED
    assert second.status == "validating"


async def test_a_restarted_emulator_still_counts_the_batches_it_had(tmp_path: Path, fake_clock: FakeClock) -> None:
    limits = {"enqueued_tokens": {"gpt-4o-mini": 10 * TOKENS_PER_REQUEST}}
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock, **limits) as client:
            await create(client, await uploaded(client, tmp_path, "first", 10))
            second_file = await uploaded(client, tmp_path, "second", 1)
        async with running(tmp_path, fake_clock, **limits) as client:
            error = await refused(client, second_file)
            fake_clock.advance(DONE)
            second = await create(client, second_file)
    assert error.code == TOKEN_LIMIT_EXCEEDED
    assert second.status == "validating"


async def test_two_emulators_on_one_home_never_both_take_the_last_tokens(tmp_path: Path, fake_clock: FakeClock) -> None:
    # Two MCP servers, each with its embedded emulator on the same home: 12 creates at once, room for 5.
    settings = EmulatorSettings(
        home=tmp_path / "emu", time_scale=1.0, enqueued_tokens={"gpt-4o-mini": 5 * TOKENS_PER_REQUEST}
    )
    outcomes: list[str] = []
    with anyio.fail_after(60):
        async with (
            Emulator(settings, clock=fake_clock) as one,
            Emulator(settings, clock=fake_clock) as two,
            azure_client("http://one", one.key, one.transport()) as first,
            azure_client("http://two", two.key, two.transport()) as second,
        ):
            file_id = await uploaded(first, tmp_path, "one", 1)

            async def attempt(client: Client) -> None:
                try:
                    outcomes.append((await create(client, file_id)).status)
                except openai.BadRequestError as exc:
                    outcomes.append(str(exc.code))

            async with anyio.create_task_group() as group:
                for n in range(12):
                    group.start_soon(attempt, first if n % 2 else second)
    assert sorted(outcomes) == ["token_limit_exceeded"] * 7 + ["validating"] * 5


async def test_without_limits_a_batch_holds_nothing_and_its_file_is_not_read(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock) as client:
            batch = await create(client, await uploaded(client, tmp_path, "in", 10))
    db = sqlite3.connect(tmp_path / "emu" / "state.sqlite3")
    with db:
        held = db.execute("SELECT held FROM batches WHERE id = ?", (batch.id,)).fetchone()
        files = [row[0] for row in db.execute("SELECT data FROM files")]
    db.close()
    assert held == (0,)
    assert all('"tokens":null' in data for data in files)


async def test_a_home_made_before_the_quota_gets_its_columns(tmp_path: Path, fake_clock: FakeClock) -> None:
    home = tmp_path / "emu"
    home.mkdir()
    db = sqlite3.connect(home / "state.sqlite3")
    db.executescript(SCHEMA)  # the tables as they were, without the quota's columns
    db.close()
    with anyio.fail_after(30):
        async with running(tmp_path, fake_clock, enqueued_tokens={"gpt-4o-mini": 100}) as client:
            file_id = await uploaded(client, tmp_path, "in", 10)
            first = await create(client, file_id)
            error = await refused(client, file_id)
    assert first.status == "validating"
    assert error.code == TOKEN_LIMIT_EXCEEDED


def test_limits_are_read_from_the_environment_with_suffixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOAI_EMULATOR_ENQUEUED_TOKENS", "gpt-4o-mini=1M, gpt-4o=30k,gpt-4-turbo=2.5B")
    monkeypatch.setenv("AOAI_EMULATOR_QUOTA_MODE", "validate")
    settings = EmulatorSettings()
    assert settings.enqueued_tokens == {"gpt-4o-mini": 1_000_000, "gpt-4o": 30_000, "gpt-4-turbo": 2_500_000_000}
    assert settings.quota_mode == "validate"


@pytest.mark.parametrize("text", ["gpt-4o-mini", "gpt-4o-mini=lots", "=5", "a=1,a=2", "a=0"])
def test_bad_limits_are_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("AOAI_EMULATOR_ENQUEUED_TOKENS", text)
    with pytest.raises(ValueError, match="AOAI_EMULATOR_ENQUEUED_TOKENS"):
        EmulatorSettings()


@pytest.mark.parametrize("mode", ["fail_fast", "validate"])
def test_the_emulator_command_takes_the_quota_as_flags(tmp_path: Path, mode: str) -> None:
    batch_file = write_batch_file(tmp_path / "in.jsonl", count=2)
    command = [sys.executable, "-m", "server", "emulator", "--port", "0", "--home", str(tmp_path / "home")]
    command += ["--enqueued-tokens", "gpt-4o-mini=15", "--quota-mode", mode]
    env = {**os.environ, "AOAI_EMULATOR_KEY": "cli-key"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        match = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
        assert match is not None
        client = openai.AzureOpenAI(
            azure_endpoint=match.group(0), api_key="cli-key", api_version=API_VERSION, max_retries=5
        )
        with client, batch_file.open("rb") as handle:
            file_id = client.files.create(file=handle, purpose="batch").id
            try:
                batch = client.batches.create(
                    input_file_id=file_id,
                    endpoint="/chat/completions",  # type: ignore[arg-type]  # Azure's path; the SDK types only /v1/...
                    completion_window="24h",
                )
                outcome = str(batch.status)
            except openai.BadRequestError as exc:
                outcome = str(exc.code)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert outcome == ("token_limit_exceeded" if mode == "fail_fast" else "validating")


def test_the_emulator_command_refuses_bad_limits_as_a_usage_error() -> None:
    command = [sys.executable, "-m", "server", "emulator", "--port", "0", "--enqueued-tokens", "gpt-4o-mini=lots"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "--enqueued-tokens" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_is_counted_request_by_request_and_what_is_no_request_is_skipped(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", request_line("a", "question 1"), [1, 2], {"custom_id": "b"})
    with path.open("ab") as handle:
        handle.write(b"not json\n")
    write_lines(tmp_path / "two.jsonl", request_line("a", "question 1"), request_line("b", "question 2", "gpt-4o"))
    assert file_tokens(path) == ("gpt-4o-mini", TOKENS_PER_REQUEST)
    assert file_tokens(tmp_path / "two.jsonl") == ("gpt-4o-mini", 2 * TOKENS_PER_REQUEST)


# A process with its own emulator on a shared home: on "go", it asks for six batches of one file at once.
CREATOR = textwrap.dedent(
    """
    import sys
    import anyio
    import httpx2
    from aoai_batch.emulator import Emulator, FakeClock
    from aoai_batch.settings import EmulatorSettings

    async def create(http, file_id, outcomes):
        body = {"input_file_id": file_id, "endpoint": "/chat/completions", "completion_window": "24h"}
        answer = await http.post("/openai/batches", params={"api-version": "2024-10-21"}, json=body)
        outcomes.append(answer.json()["status"] if answer.status_code == 200 else answer.json()["error"]["code"])

    async def main():
        home, limit, file_id = sys.argv[1], sys.argv[2], sys.argv[3]
        settings = EmulatorSettings(home=home, time_scale=1.0, enqueued_tokens=limit)
        async with Emulator(settings, clock=FakeClock()) as emulator:
            headers = {"api-key": emulator.key}
            async with httpx2.AsyncClient(transport=emulator.transport(), base_url="http://e", headers=headers) as http:
                print("ready", flush=True)
                await anyio.to_thread.run_sync(sys.stdin.readline)
                outcomes = []
                async with anyio.create_task_group() as group:
                    for _ in range(6):
                        group.start_soon(create, http, file_id, outcomes)
                print(" ".join(outcomes), flush=True)

    anyio.run(main)
    """
)


def create_in_processes(home: Path, limit: str, file_id: str, processes: int) -> list[str]:
    """Start `processes` creators, let them go together; what each create got (a status, or an error code)."""
    command = [sys.executable, "-c", CREATOR, str(home), limit, file_id]
    creators = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    try:
        for creator in creators:
            assert creator.stdout is not None
            assert creator.stdout.readline().strip() == "ready"
        for creator in creators:
            assert creator.stdin is not None
            creator.stdin.write("go\n")
            creator.stdin.flush()
        outputs = [creator.communicate(timeout=120)[0] for creator in creators]
    finally:
        for creator in creators:
            creator.kill()
            creator.communicate(timeout=30)
    return " ".join(outputs).split()


async def test_two_processes_on_one_home_count_the_same_batches(tmp_path: Path, fake_clock: FakeClock) -> None:
    limit = f"gpt-4o-mini={5 * TOKENS_PER_REQUEST}"
    async with running(tmp_path, fake_clock, enqueued_tokens=limit) as client:
        file_id = await uploaded(client, tmp_path, "one", 1)
    outcomes = create_in_processes(tmp_path / "emu", limit, file_id, processes=2)
    assert sorted(outcomes) == ["token_limit_exceeded"] * 7 + ["validating"] * 5


async def test_the_embedded_emulator_reads_the_quota_and_the_service_says_which_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_EMULATOR_ENQUEUED_TOKENS", "gpt-4o-mini=15")
    settings = Settings(home=tmp_path / "home", workspace=str(tmp_path), provider="emulator")
    path = write_batch_file(tmp_path / "in.jsonl", count=2)  # 20 tokens
    with anyio.fail_after(30):
        async with BatchService.open(settings) as service:
            uploaded = await service.upload_file(path)
            with pytest.raises(InvalidRequest) as caught:
                await service.create_batch(uploaded.file.id)
    assert caught.value.code == TOKEN_LIMIT_EXCEEDED
    assert limit_named_in(str(caught.value)) == 15
