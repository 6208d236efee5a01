"""fetch_results end to end: the real client over the emulator's ASGI transport, a real registry, real files."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import orjson
import pytest

from aoai_batch.client import BatchClient, emulator_connection
from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import BatchToolError, ConnectionFailed, InvalidInput, NoSpace, NotFound, NotReady, NotWritable
from aoai_batch.models import Batch, FetchSummary
from aoai_batch.results.fetch import _never_ran, fetch_results
from aoai_batch.settings import EmulatorSettings
from aoai_batch.store import Store
from aoai_batch.validation import validate_file
from tests.support.clock import DONE, PER_REQUEST, VALIDATION
from tests.support.paths import names_in


@dataclass
class Setup:
    client: BatchClient
    store: Store
    clock: FakeClock
    folder: Path

    async def start(self, path: Path) -> Batch:
        """Upload `path` as this server would (recording where it came from) and create a batch."""
        info = await self.client.upload_file(path)
        await self.store.save_file(info, local_path=str(path))
        batch = await self.client.create_batch(info.id)
        return (await self.store.save_batch(batch)).batch

    async def fetch(self, batch_id: str, **kw: Any) -> FetchSummary:
        kw.setdefault("output_dir", self.folder / "results")
        with anyio.fail_after(30):
            return await fetch_results(self.client, self.store, batch_id, **kw)


def write_requests(path: Path, ids: list[str], model: str = "gpt-4o-mini") -> Path:
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": "/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"question {cid}"}]},
        }
        for cid in ids
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def rows(path: str | None) -> list[dict[str, Any]]:
    assert path is not None
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def edit(path: str) -> None:
    Path(path).write_bytes(b'{"edited": true}\n')


IDS = [f"task-{n}" for n in range(6)]


@pytest.fixture
def settings_change() -> dict[str, Any]:
    return {}


@pytest.fixture
async def setup(
    tmp_path: Path, emulator_settings: EmulatorSettings, fake_clock: FakeClock, settings_change: dict[str, Any]
) -> AsyncIterator[Setup]:
    async with (
        Emulator(emulator_settings.model_copy(update=settings_change), clock=fake_clock) as emulator,
        await Store.open(tmp_path / "state.sqlite3") as store,
    ):
        connection = emulator_connection(emulator.key, api_version="2024-10-21")
        async with BatchClient(connection, transport=emulator.transport(), max_retries=0) as client:
            yield Setup(client, store, fake_clock, tmp_path)


async def test_a_completed_batch_is_joined_and_its_summary_kept(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(DONE)

    summary = await setup.fetch(batch.id, preview=2)

    assert summary.batch_status == "completed"
    assert summary.counts.model_dump() == {"succeeded": 6, "failed": 0, "missing": 0}
    assert summary.usage.total_tokens > 0
    assert summary.retry_path is None
    assert summary.errors_path is None  # Azure's error file of a clean batch is empty: not kept
    results = rows(summary.results_path)
    assert [row["custom_id"] for row in results] == IDS
    assert results[0]["input"] == "question task-0"
    assert "question task-0" in results[0]["content"]
    assert len(summary.preview) == 2
    assert await setup.store.results_summary(batch.id) == summary
    record = await setup.store.get_batch(batch.id)
    assert record is not None
    assert record.batch.results_path == summary.results_path
    assert [p.name for p in (setup.folder / "results").iterdir()] == [Path(summary.results_path or "").name]


@pytest.mark.parametrize("settings_change", [{"fail_rate": 0.5}])
async def test_failed_requests_are_reported_by_code_and_go_to_a_valid_retry_file(setup: Setup) -> None:
    ids = [f"req-{n}" for n in range(20)]
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", ids))
    setup.clock.advance(DONE)

    summary = await setup.fetch(batch.id, format="csv")

    assert summary.counts.failed > 0
    assert summary.counts.succeeded > 0
    assert summary.counts.failed + summary.counts.succeeded == 20
    assert sum(summary.failures_by_code.values()) == summary.counts.failed
    assert summary.errors_path is not None
    assert rows(summary.errors_path)
    assert summary.results_path is not None
    assert summary.results_path.endswith(".csv")
    assert summary.retry_path is not None
    retry = rows(summary.retry_path)
    assert len(retry) == summary.counts.failed
    assert summary.failed_ids == [line["custom_id"] for line in retry][:10]
    assert validate_file(Path(summary.retry_path), max_requests=100_000, max_bytes=200_000_000).ok


@pytest.mark.parametrize("settings_change", [{"fail_rate": 1.0, "no_output_when_all_failed": True}])
async def test_an_all_failed_batch_without_output_file_is_a_normal_result(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(DONE)

    summary = await setup.fetch(batch.id)

    assert summary.counts.model_dump() == {"succeeded": 0, "failed": 6, "missing": 0}
    assert summary.note is not None
    assert len(rows(summary.retry_path)) == 6
    assert {row["status"] for row in rows(summary.results_path)} == {"failed"}


async def test_a_cancelled_batch_gives_its_partial_answers_and_the_rest_missing(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(VALIDATION + 2.5 * PER_REQUEST)
    await setup.client.cancel_batch(batch.id)
    setup.clock.advance(DONE)

    summary = await setup.fetch(batch.id)

    assert summary.batch_status == "cancelled"
    assert summary.counts.succeeded == 2
    assert summary.counts.missing == 4
    assert summary.note is not None
    assert [line["custom_id"] for line in rows(summary.retry_path)] == IDS[2:]
    assert [row["status"] for row in rows(summary.results_path)] == ["succeeded"] * 2 + ["missing"] * 4


@pytest.mark.parametrize(
    "settings_change", [{"seconds_per_request": 40_000.0, "max_processing_seconds": 10 * 86_400.0}]
)
async def test_an_expired_batch_marks_the_requests_that_never_ran_missing(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(DONE)

    summary = await setup.fetch(batch.id)

    assert summary.batch_status == "expired"
    assert summary.counts.missing > 0
    assert summary.counts.failed == 0
    assert summary.counts.succeeded + summary.counts.missing == 6
    assert len(rows(summary.retry_path)) == summary.counts.missing


async def test_a_batch_that_failed_validation_says_no_request_ran_and_writes_nothing(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS, model="no-such-deployment"))
    setup.clock.advance(DONE)

    summary = await setup.fetch(batch.id)

    assert summary.batch_status == "failed"
    assert summary.results_path is None
    assert summary.retry_path is None
    assert summary.counts.succeeded == 0
    assert summary.note is not None
    assert summary.failures_by_code
    assert not (setup.folder / "results").exists()
    assert await setup.store.results_summary(batch.id) == summary


async def test_a_running_batch_is_not_ready_and_nothing_is_written(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))

    with pytest.raises(NotReady):
        await setup.fetch(batch.id)
    assert not (setup.folder / "results").exists()
    assert await setup.store.results_summary(batch.id) is None


async def test_an_unknown_batch_is_not_found(setup: Setup) -> None:
    with pytest.raises(NotFound):
        await setup.fetch("batch_does_not_exist")


@pytest.mark.parametrize(("change", "error"), [({"format": "xlsx"}, InvalidInput), ({"preview": 21}, InvalidInput)])
async def test_bad_parameters_are_refused_before_any_request(
    setup: Setup, change: dict[str, Any], error: type[BatchToolError]
) -> None:
    with pytest.raises(error):
        await setup.fetch("batch_whatever", **change)


async def test_a_second_fetch_never_overwrites_the_first_unless_asked(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(DONE)
    first = await setup.fetch(batch.id)
    assert first.results_path is not None
    edit(first.results_path)

    second = await setup.fetch(batch.id)
    assert second.results_path != first.results_path
    assert rows(first.results_path) == [{"edited": True}]
    assert len(rows(second.results_path)) == 6

    third = await setup.fetch(batch.id, overwrite=True)
    assert third.results_path == first.results_path
    assert len(rows(third.results_path)) == 6


async def test_the_input_is_downloaded_when_the_local_copy_changed_or_is_gone(setup: Setup) -> None:
    path = write_requests(setup.folder / "in.jsonl", IDS)
    batch = await setup.start(path)
    setup.clock.advance(DONE)
    path.write_bytes(b'{"custom_id": "other"}\n')  # edited after upload: not the batch's input any more

    summary = await setup.fetch(batch.id)
    path.unlink()
    again = await setup.fetch(batch.id, overwrite=True)

    assert [row["input"] for row in rows(summary.results_path)] == [f"question {cid}" for cid in IDS]
    assert summary.counts.succeeded == 6
    assert again.counts.succeeded == 6


class CutDownloads(httpx2.AsyncBaseTransport):
    """The emulator, except that file downloads break off after their first bytes (a dropped connection)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/content"):
            return response
        return httpx2.Response(response.status_code, headers=response.headers, stream=_CutStream(response))


class _CutStream(httpx2.AsyncByteStream):
    def __init__(self, response: httpx2.Response) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body = await self.response.aread()
        yield body[: len(body) // 2]
        raise httpx2.ReadError("connection dropped")


async def test_an_interrupted_download_leaves_nothing_that_looks_complete(
    tmp_path: Path, emulator: Emulator, fake_clock: FakeClock
) -> None:
    connection = emulator_connection(emulator.key, api_version="2024-10-21")
    transport = CutDownloads(emulator.transport())
    async with (
        await Store.open(tmp_path / "state.sqlite3") as store,
        BatchClient(connection, transport=transport, max_retries=0) as client,
    ):
        setup = Setup(client, store, fake_clock, tmp_path)
        batch = await setup.start(write_requests(tmp_path / "in.jsonl", IDS))
        fake_clock.advance(DONE)
        with pytest.raises(ConnectionFailed):
            await setup.fetch(batch.id)
        assert await store.results_summary(batch.id) is None
    assert list((tmp_path / "results").iterdir()) == []


@pytest.mark.parametrize(
    ("status", "files", "completed", "failed", "never_ran"),
    [
        ("failed", None, 0, 0, True),
        ("failed", "file-1", 0, 0, True),  # Azure may name empty files on a validation failure
        ("failed", "file-1", 3, 1, False),
        ("completed", None, 0, 0, False),
        ("cancelled", None, 0, 0, False),
    ],
)
def test_a_failed_batch_counts_as_never_run_only_when_nothing_ran(
    status: str, files: str | None, completed: int, failed: int, never_ran: bool
) -> None:
    batch = Batch.model_validate(
        {
            "id": "b",
            "status": status,
            "terminal": True,
            "output_file_id": files,
            "error_file_id": files,
            "request_counts": {"total": 4, "completed": completed, "failed": failed},
            "backend": "azure",
        }
    )

    assert _never_ran(batch) is never_ran


def remount_read_only(mountpoint: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mountpoint)], check=True)


MANY_IDS = [f"task-{n}" for n in range(400)]  # about 400 KB of output: more than the tiny disk holds


async def test_a_full_disk_is_no_space_naming_the_folder_and_leaves_nothing(setup: Setup, tiny_disk: Path) -> None:
    """ENOSPC from a real, full tmpfs."""
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", MANY_IDS))
    setup.clock.advance(DONE)

    with pytest.raises(NoSpace) as caught:
        await setup.fetch(batch.id, output_dir=tiny_disk)

    assert caught.value.folder == str(tiny_disk)
    assert names_in(tiny_disk) == []
    assert await setup.store.results_summary(batch.id) is None


async def test_a_read_only_disk_is_not_writable_naming_the_folder(setup: Setup, tiny_disk: Path) -> None:
    """EROFS from the same tmpfs remounted read-only (root is refused too)."""
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(DONE)
    remount_read_only(tiny_disk)

    with pytest.raises(NotWritable) as caught:
        await setup.fetch(batch.id, output_dir=tiny_disk)

    assert caught.value.folder == str(tiny_disk)
    assert await setup.store.results_summary(batch.id) is None


async def test_a_folder_under_a_regular_file_is_not_writable(setup: Setup) -> None:
    """ENOTDIR: a path whose parent is a regular file (refused to root as to anyone)."""
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(DONE)
    blocker = setup.folder / "a-file"
    blocker.write_bytes(b"not a folder")

    with pytest.raises(NotWritable) as caught:
        await setup.fetch(batch.id, output_dir=blocker / "results")

    assert caught.value.folder == str(blocker / "results")
    assert await setup.store.results_summary(batch.id) is None


async def test_a_fetch_removes_the_scratch_a_killed_fetch_left(setup: Setup) -> None:
    batch = await setup.start(write_requests(setup.folder / "in.jsonl", IDS))
    setup.clock.advance(DONE)
    folder = setup.folder / "results"
    folder.mkdir()
    stale = folder / ".fetch-0123456789ab"
    stale.mkdir()
    (stale / ".output.jsonl.a1b2c3d4e5f6.partial").write_bytes(b"half a download")

    summary = await setup.fetch(batch.id, output_dir=folder)

    assert names_in(folder) == [Path(summary.results_path or "").name]
