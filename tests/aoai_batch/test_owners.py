"""Whose jobs a call may see (SPEC §10): BatchService and RunService on the real emulator and registry, each
call run as a viewer (`identity.acting_as`), as the server runs each signed-in user's request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import BatchToolError, NotFound
from aoai_batch.identity import acting_as, current_viewer, may_see
from aoai_batch.models import Batch
from aoai_batch.owners import own_page
from aoai_batch.service import BatchService
from aoai_batch.settings import Settings
from tests.support.batch_files import write_batch_file
from tests.support.owners import ALICE, BOB, BOB_SHARED, open_registry, refused
from tests.support.runs import ClockedSleep


@pytest.fixture
async def service(tmp_path: Path, emulator: Emulator, fake_clock: FakeClock) -> AsyncIterator[BatchService]:
    settings = Settings.model_validate(
        {"home": tmp_path / "home", "provider": "emulator", "api_key": emulator.key, "workspace": str(tmp_path)}
    )
    async with BatchService.open(
        settings, transport=emulator.transport(), sleep=ClockedSleep(fake_clock), clock=fake_clock.now
    ) as opened:
        yield opened


async def alices_batch(service: BatchService, tmp_path: Path, **create: Any) -> Batch:
    with acting_as(ALICE):
        uploaded = await service.upload_file(write_batch_file(tmp_path / "alice.jsonl"))
        return await service.create_batch(uploaded.file.id, **create)


async def finished(service: BatchService, batch: Batch) -> Batch:
    with anyio.fail_after(30):
        while not batch.terminal:
            batch = await service.get_batch(batch.id, wait_seconds=50)
    return batch


def test_the_rule_own_jobs_or_every_job_when_shared() -> None:
    assert ALICE.may_see("alice-oid")
    assert not ALICE.may_see("bob-oid")
    assert not ALICE.may_see(None)  # made without sign-in: no signed-in user's own
    assert BOB_SHARED.may_see("alice-oid")
    assert BOB_SHARED.may_see(None)
    assert current_viewer() is None
    assert may_see("anyone")
    assert may_see(None)
    with acting_as(ALICE):
        assert current_viewer() == ALICE
        assert may_see("alice-oid")
        assert not may_see("bob-oid")
        with acting_as(None):
            assert may_see("bob-oid")
        assert current_viewer() == ALICE
    assert current_viewer() is None


async def test_uploads_and_batches_record_their_owner(service: BatchService, tmp_path: Path) -> None:
    created = await alices_batch(service, tmp_path)
    async with await open_registry(tmp_path / "home") as registry:
        batch = await registry.get_batch(created.id)
        file = await registry.get_file(created.input_file_id or "")
    assert batch is not None
    assert file is not None
    assert (batch.owner, file.owner) == ("alice-oid", "alice-oid")


async def test_another_users_batch_is_refused_exactly_as_a_missing_one(service: BatchService, tmp_path: Path) -> None:
    created = await finished(service, await alices_batch(service, tmp_path))
    calls: dict[str, Callable[[str], Awaitable[Any]]] = {
        "get_batch": service.get_batch,
        "cancel_batch": service.cancel_batch,
        "fetch_results": lambda batch_id: service.fetch_results(batch_id, output_dir=tmp_path / "bob"),
        "registry_job": service.registry_job,
        "results_summary": service.results_summary,
    }
    with acting_as(BOB):
        for name, call in calls.items():
            theirs = await refused(call, created.id)
            missing = await refused(call, "batch_00000000000000000000000000000000")
            assert theirs == missing, name
            assert theirs[:2] == (NotFound, "not_found")
            assert theirs[3] == "batch"
    assert not (tmp_path / "bob").exists()  # nothing was fetched for bob
    with acting_as(ALICE):
        assert (await service.get_batch(created.id)).id == created.id
        summary = await service.fetch_results(created.id, output_dir=tmp_path / "alice-out")
        assert summary.counts.succeeded == 3
        assert await service.results_summary(created.id) is not None


async def test_another_users_file_is_refused_exactly_as_a_missing_one(service: BatchService, tmp_path: Path) -> None:
    created = await alices_batch(service, tmp_path)
    file_id = created.input_file_id or ""
    calls: dict[str, Callable[[str], Awaitable[Any]]] = {
        "get_file": service.get_file,
        "estimate_file": service.estimate_file,
        "create_batch": service.create_batch,
    }
    with acting_as(BOB):
        for name, call in calls.items():
            theirs = await refused(call, file_id)
            assert theirs == await refused(call, "file-00000000000000000000000000000000"), name
            assert theirs[3] == "file"
    async with await open_registry(tmp_path / "home") as registry:
        assert [record.batch.id for record in await registry.list_batches()] == [created.id]  # bob made none


async def test_each_user_lists_only_their_own_and_shared_jobs_show_everyone_theirs(
    service: BatchService, tmp_path: Path
) -> None:
    alices = await alices_batch(service, tmp_path)
    with acting_as(BOB):
        uploaded = await service.upload_file(write_batch_file(tmp_path / "bob.jsonl"))
        bobs = await service.create_batch(uploaded.file.id)
    unowned = await service.create_batch(uploaded.file.id)  # no viewer: a CLI, a static token

    async def seen() -> tuple[list[str], list[str], list[str]]:
        page = await service.list_batches()
        files = await service.list_files()
        return [b.id for b in page.batches], [b.id for b in await service.registry_jobs()], [f.id for f in files.files]

    with acting_as(ALICE):
        assert await seen() == ([alices.id], [alices.id], [alices.input_file_id])
    with acting_as(BOB):
        assert await seen() == ([bobs.id], [bobs.id], [bobs.input_file_id])
    everyone = {alices.id, bobs.id, unowned.id}
    for viewer in (None, BOB_SHARED):
        with acting_as(viewer):
            batches, jobs, files = await seen()
            assert set(batches) == set(jobs) == everyone
            assert set(files) == {alices.input_file_id, bobs.input_file_id}
            assert (await service.get_batch(alices.id)).id == alices.id  # and may change it
    with acting_as(BOB_SHARED):
        cancelled = await service.cancel_batch(alices.id)
    assert cancelled.status in {"cancelling", "cancelled"}
    async with await open_registry(tmp_path / "home") as registry:
        record = await registry.get_batch(alices.id)
    assert record is not None
    assert record.owner == "alice-oid"


async def test_an_idempotency_key_is_each_users_own(service: BatchService, tmp_path: Path) -> None:
    alices = await alices_batch(service, tmp_path, idempotency_key="nightly")
    with acting_as(BOB):
        uploaded = await service.upload_file(write_batch_file(tmp_path / "bob.jsonl"))
        bobs = await service.create_batch(uploaded.file.id, idempotency_key="nightly")
        again = await service.create_batch(uploaded.file.id, idempotency_key="nightly")
    with acting_as(ALICE):
        alices_again = await service.create_batch(alices.input_file_id or "", idempotency_key="nightly")
    assert bobs.id != alices.id
    assert (again.id, alices_again.id) == (bobs.id, alices.id)
    async with await open_registry(tmp_path / "home") as registry:
        assert len(await registry.list_batches()) == 2


async def test_a_users_listing_pages_with_after_and_filters_by_status(service: BatchService, tmp_path: Path) -> None:
    with acting_as(ALICE):
        uploaded = await service.upload_file(write_batch_file(tmp_path / "alice.jsonl"))
        made = [await service.create_batch(uploaded.file.id) for _ in range(3)]
        await service.cancel_batch(made[0].id)
        first = await service.list_batches(limit=2)
        second = await service.list_batches(limit=2, after=first.last_id)
        running = await service.list_batches(status="validating")
        with pytest.raises(BatchToolError, match="limit must be between 1 and 100"):
            await service.list_batches(limit=0)
    listed = [b.id for b in first.batches + second.batches]
    assert sorted(listed) == sorted(b.id for b in made)
    assert (first.has_more, second.has_more) == (True, False)
    assert made[0].id not in {b.id for b in running.batches}


def test_a_page_after_an_id_not_among_them_is_empty() -> None:
    assert own_page([], limit=5, after="batch_x", status=None).batches == []
