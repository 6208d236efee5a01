"""BatchService against the real emulator (in-process ASGI transport, hand-moved clock) and a real registry."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.errors import InvalidInput, InvalidRequest, NotAFileId, NotFound, UnknownDeployment
from aoai_batch.limits import FileRules
from aoai_batch.models import FetchSummary, ResultCounts
from aoai_batch.service import FILE_POLL_SECONDS, BatchService
from aoai_batch.settings import EmulatorSettings, Settings, known_deployments
from aoai_batch.store import Store
from tests.support.batch_files import write_batch_file

EMULATOR_FILE_POLL = FILE_POLL_SECONDS["emulator"]


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, done: float, total: float | None, message: str | None) -> None:
        self.calls.append((done, total, message))


class Clocked:
    """The service's sleep and clock, moving the emulator's fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)
        await anyio.lowlevel.checkpoint()


def settings_for(tmp_path: Path, emulator: Emulator, **extra: object) -> Settings:
    return Settings.model_validate(
        {
            "home": tmp_path / "home",
            "provider": "emulator",
            "api_key": emulator.key,
            "workspace": str(tmp_path),
            **extra,
        }
    )


@pytest.fixture
def clocked(fake_clock: FakeClock) -> Clocked:
    return Clocked(fake_clock)


@pytest.fixture
async def service(tmp_path: Path, emulator: Emulator, clocked: Clocked) -> AsyncIterator[BatchService]:
    async with BatchService.open(
        settings_for(tmp_path, emulator), transport=emulator.transport(), sleep=clocked.sleep, clock=clocked.clock.now
    ) as opened:
        yield opened


async def emulator_batch_ids(emulator: Emulator) -> list[str]:
    return [record.id for record in await emulator.operations.list_batches()]


async def open_registry(tmp_path: Path) -> Store:
    """The registry the service of `settings_for(tmp_path, ...)` keeps, opened beside it (as another process would)."""
    return await Store.open(tmp_path / "home" / "state.sqlite3")


async def test_upload_checks_the_file_and_records_where_it_came_from(service: BatchService, tmp_path: Path) -> None:
    path = write_batch_file(tmp_path / "in.jsonl")
    progress = Progress()
    result = await service.upload_file(path, progress=progress)
    assert result.file.status == "processed"
    assert result.validation is not None
    assert result.validation.ok
    assert result.validation.requests == 3
    assert progress.calls
    async with await open_registry(tmp_path) as registry:
        record = await registry.get_file(result.file.id)
    assert record is not None
    assert record.local_path == str(path.resolve())


async def test_uploads_check_estimates_tokens_from_characters(service: BatchService, tmp_path: Path) -> None:
    # Saying a file is valid needs no exact count, and the tokenizer's tables would double upload's memory.
    result = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))

    assert result.validation is not None
    assert result.validation.tokens_exact is False
    assert result.validation.estimated_input_tokens > 0


async def test_upload_waits_until_the_service_has_processed_the_file(
    tmp_path: Path, emulator_settings: EmulatorSettings, fake_clock: FakeClock
) -> None:
    slow = emulator_settings.model_copy(update={"file_processing_seconds": 4.0})
    clocked = Clocked(fake_clock)
    progress = Progress()
    async with (
        Emulator(slow, clock=fake_clock) as emulator,
        BatchService.open(
            settings_for(tmp_path, emulator), transport=emulator.transport(), sleep=clocked.sleep, clock=fake_clock.now
        ) as service,
    ):
        with anyio.fail_after(30):
            waited = await service.upload_file(write_batch_file(tmp_path / "a.jsonl"), progress=progress)
            not_waited = await service.upload_file(write_batch_file(tmp_path / "b.jsonl"), wait=False)
    assert waited.file.status == "processed"
    assert not_waited.file.status != "processed"
    assert sum(clocked.slept) >= 4
    assert clocked.slept[0] < EMULATOR_FILE_POLL  # a small file is looked at again soon
    assert clocked.slept == sorted(clocked.slept)  # then less and less often
    assert max(clocked.slept) <= EMULATOR_FILE_POLL
    assert any(message and "waiting" in message for _, _, message in progress.calls)


async def test_an_invalid_file_is_refused_and_nothing_is_uploaded(
    service: BatchService, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"custom_id": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(InvalidInput):
        await service.upload_file(path)
    assert await emulator.operations.list_files(None) == []


@pytest.mark.parametrize("days", [1, 13, 31])
async def test_an_expiry_outside_azures_14_to_30_days_is_refused_before_upload(
    service: BatchService, emulator: Emulator, tmp_path: Path, days: int
) -> None:
    path = write_batch_file(tmp_path / "ok.jsonl")
    with pytest.raises(InvalidInput):
        await service.upload_file(path, expires_after_days=days)
    assert await emulator.operations.list_files(None) == []


@pytest.mark.parametrize("name", ["missing.jsonl", "."])
async def test_a_path_that_is_not_a_file_is_an_input_error(service: BatchService, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        await service.upload_file(tmp_path / name)


async def test_the_whole_flow_completes_and_the_registry_follows_it(
    service: BatchService, tmp_path: Path, clocked: Clocked
) -> None:
    path = write_batch_file(tmp_path / "in.jsonl")
    uploaded = await service.upload_file(path)
    created = await service.create_batch(uploaded.file.id, metadata={"project": "demo"})
    assert created.status == "validating"
    assert created.input_path == str(path.resolve())
    assert created.metadata["project"] == "demo"

    with anyio.fail_after(30):
        batch = created
        while not batch.terminal:
            batch = await service.get_batch(created.id, wait_seconds=50)
    assert batch.status == "completed"
    assert batch.output_file_id is not None
    assert batch.request_counts.completed == 3
    assert batch.input_path == str(path.resolve())
    async with await open_registry(tmp_path) as registry:
        history = await registry.history(created.id)
    assert next(change.status for change in history) == "validating"
    assert history[-1].status == "completed"
    assert [job.id for job in await service.registry_jobs()] == [created.id]


async def test_waiting_returns_early_when_the_batch_changes(
    service: BatchService, tmp_path: Path, clocked: Clocked
) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    created = await service.create_batch(uploaded.file.id)
    clocked.clock.advance(EMULATOR_FILE_POLL)
    clocked.slept.clear()
    with anyio.fail_after(30):
        first = await service.get_batch(created.id)
        clocked.clock.advance(295 - EMULATOR_FILE_POLL)  # validation (300 s) ends during the wait
        progress = Progress()
        batch = await service.get_batch(created.id, wait_seconds=50, progress=progress)
    assert first.status == "validating"
    assert batch.status == "in_progress"
    assert sum(clocked.slept) < 50
    assert progress.calls
    assert progress.calls[-1][1] == 50


async def test_waiting_without_a_change_returns_after_the_wait(
    tmp_path: Path, emulator_settings: EmulatorSettings, fake_clock: FakeClock
) -> None:
    slow = emulator_settings.model_copy(update={"validation_seconds": 10_000.0})
    clocked = Clocked(fake_clock)
    async with Emulator(slow, clock=fake_clock) as emulator:
        settings = settings_for(tmp_path, emulator)
        async with BatchService.open(
            settings, transport=emulator.transport(), sleep=clocked.sleep, clock=fake_clock.now
        ) as service:
            uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
            created = await service.create_batch(uploaded.file.id)
            clocked.slept.clear()
            with anyio.fail_after(30):
                batch = await service.get_batch(created.id, wait_seconds=7)
    assert batch.status == "validating"
    assert sum(clocked.slept) == pytest.approx(7)


@pytest.mark.parametrize("wait", [-1, 51, 1000])
async def test_a_wait_outside_zero_to_fifty_seconds_is_refused(service: BatchService, wait: float) -> None:
    with pytest.raises(InvalidInput):
        await service.get_batch("batch_x", wait_seconds=wait)


async def test_the_same_idempotency_key_never_creates_a_second_batch(
    service: BatchService, emulator: Emulator, tmp_path: Path
) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    first = await service.create_batch(uploaded.file.id, idempotency_key="nightly-1")
    second = await service.create_batch(uploaded.file.id, idempotency_key="nightly-1")
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(functools.partial(service.create_batch, uploaded.file.id, idempotency_key="nightly-1"))
    assert second.id == first.id
    assert await emulator_batch_ids(emulator) == [first.id]


async def test_a_key_used_by_another_process_is_found_in_the_services_list(
    tmp_path: Path, emulator: Emulator, clocked: Clocked
) -> None:
    path = write_batch_file(tmp_path / "in.jsonl")
    settings = settings_for(tmp_path, emulator)
    opened = {"transport": emulator.transport(), "sleep": clocked.sleep, "clock": clocked.clock.now}
    async with BatchService.open(settings, **opened) as service:  # type: ignore[arg-type]
        uploaded = await service.upload_file(path)
        first = await service.create_batch(uploaded.file.id, idempotency_key="k-1")
    other = settings.model_copy(update={"home": tmp_path / "other-home"})
    async with BatchService.open(other, **opened) as service:  # type: ignore[arg-type]
        again = await service.create_batch(uploaded.file.id, idempotency_key="k-1")
    assert again.id == first.id
    assert await emulator_batch_ids(emulator) == [first.id]


class LoseFirstBatchAnswer(httpx2.AsyncBaseTransport):
    """Passes requests to the emulator, but loses the answer to the first batch creation after it happened."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/batches") and not self.lost:
            self.lost += 1
            await response.aclose()
            raise httpx2.ReadError("connection reset after the request was processed", request=request)
        return response


@pytest.mark.parametrize("key", [None, "given-key"])
async def test_a_lost_create_answer_does_not_create_a_duplicate(
    tmp_path: Path, emulator: Emulator, clocked: Clocked, key: str | None
) -> None:
    transport = LoseFirstBatchAnswer(emulator.transport())
    async with BatchService.open(
        settings_for(tmp_path, emulator), transport=transport, sleep=clocked.sleep, clock=clocked.clock.now
    ) as service:
        uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
        batch = await service.create_batch(uploaded.file.id, idempotency_key=key)
    assert transport.lost == 1
    assert await emulator_batch_ids(emulator) == [batch.id]


async def test_the_flow_completes_through_rate_limits_server_errors_and_dropped_connections(
    tmp_path: Path, emulator_settings: EmulatorSettings, fake_clock: FakeClock
) -> None:
    faulty = emulator_settings.model_copy(
        update={
            "faults": "429:0.2,503:0.05,500:0.03,drop:0.05,retry_after:0.001",
            "fault_seed": 7,
            "validation_seconds": 10.0,
            "seconds_per_request": 5.0,
            "finalizing_seconds": 10.0,
            "file_processing_seconds": 3.0,
        }
    )
    clocked = Clocked(fake_clock)
    async with Emulator(faulty, clock=fake_clock) as emulator:
        async with BatchService.open(
            settings_for(tmp_path, emulator), transport=emulator.transport(), sleep=clocked.sleep, clock=fake_clock.now
        ) as service:
            with anyio.fail_after(120):
                uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
                created = await service.create_batch(uploaded.file.id, idempotency_key="faulty")
                batch = created
                while not batch.terminal:
                    batch = await service.get_batch(created.id, wait_seconds=50)
        ids = await emulator_batch_ids(emulator)
    assert batch.status == "completed"
    assert ids == [created.id]


async def test_cancel_moves_a_running_batch_to_cancelling_or_cancelled(service: BatchService, tmp_path: Path) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    created = await service.create_batch(uploaded.file.id)
    cancelled = await service.cancel_batch(created.id)
    assert cancelled.status in {"cancelling", "cancelled"}
    again = await service.cancel_batch(created.id) if cancelled.status == "cancelling" else cancelled
    assert again.status in {"cancelling", "cancelled"}


async def test_cancel_of_a_completed_batch_is_an_error(service: BatchService, tmp_path: Path) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    created = await service.create_batch(uploaded.file.id)
    with anyio.fail_after(30):
        batch = created
        while not batch.terminal:
            batch = await service.get_batch(created.id, wait_seconds=50)
    with pytest.raises(InvalidRequest):
        await service.cancel_batch(created.id)


async def test_an_unknown_batch_is_not_found(service: BatchService) -> None:
    with pytest.raises(NotFound):
        await service.get_batch("batch_does_not_exist")
    with pytest.raises(NotFound):
        await service.registry_job("batch_does_not_exist")


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"endpoint": "/images"}, InvalidInput),
        ({"completion_window": "48h"}, InvalidInput),
        ({"metadata": {"idempotency_key": "x"}}, InvalidInput),
        ({"metadata": {f"k{i}": "v" for i in range(16)}}, InvalidInput),
        ({"metadata": {"k": "v" * 513}}, InvalidInput),
        ({"idempotency_key": "  "}, InvalidInput),
        ({"input_file_id": ""}, InvalidInput),
        ({"input_file_id": "file-missing"}, NotFound),
    ],
)
async def test_bad_create_parameters_are_refused(
    service: BatchService, change: dict[str, object], kind: type[Exception]
) -> None:
    arguments: dict[str, object] = {"input_file_id": "file-1", **change}
    with pytest.raises(kind):
        await service.create_batch(**arguments)  # type: ignore[arg-type]


async def test_list_shows_newest_first_and_filters_by_status(service: BatchService, tmp_path: Path) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    first = await service.create_batch(uploaded.file.id)
    second = await service.create_batch(uploaded.file.id)
    await service.cancel_batch(first.id)
    page = await service.list_batches(limit=10)
    assert [batch.id for batch in page.batches] == [second.id, first.id]
    assert page.batches[1].input_path is not None
    validating = await service.list_batches(limit=10, status="validating")
    assert [batch.id for batch in validating.batches] == [second.id]


async def test_list_pages_with_after(service: BatchService, tmp_path: Path) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    ids = [(await service.create_batch(uploaded.file.id)).id for _ in range(3)]
    first = await service.list_batches(limit=2)
    rest = await service.list_batches(limit=2, after=first.last_id)
    assert first.has_more is True
    assert [b.id for b in first.batches + rest.batches] == ids[::-1]
    assert rest.has_more is False


async def test_a_fresh_job_snapshot_is_served_from_the_registry(
    tmp_path: Path, emulator: Emulator, clocked: Clocked
) -> None:
    now = [1_000.0]
    async with BatchService.open(
        settings_for(tmp_path, emulator),
        transport=emulator.transport(),
        sleep=clocked.sleep,
        clock=clocked.clock.now,
        now=lambda: now[0],
    ) as service:
        uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
        created = await service.create_batch(uploaded.file.id)
        clocked.clock.advance(10_000)  # the batch has finished on the service by now
        cached = await service.registry_job(created.id)
        now[0] += service.poll_seconds
        refreshed = await service.registry_job(created.id)
    assert cached.status == "validating"
    assert refreshed.status == "completed"


async def test_refresh_active_reports_only_the_jobs_that_changed(
    service: BatchService, tmp_path: Path, clocked: Clocked
) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    created = await service.create_batch(uploaded.file.id)
    assert await service.refresh_active() == []
    clocked.clock.advance(10_000)
    changed = await service.refresh_active()
    assert [batch.id for batch in changed] == [created.id]
    assert changed[0].status == "completed"
    assert await service.refresh_active() == []


async def test_a_results_summary_is_served_once_saved(service: BatchService, tmp_path: Path) -> None:
    assert await service.results_summary("batch_1") is None
    summary = FetchSummary(
        batch_id="batch_1", batch_status="completed", format="jsonl", counts=ResultCounts(succeeded=1)
    )
    async with await open_registry(tmp_path) as registry:  # saved by another process sharing the registry
        await registry.save_results_summary(summary)
    assert await service.results_summary("batch_1") == summary


@pytest.mark.parametrize("api_version", ["2024-10-21", "v1"])
async def test_the_legacy_wire_format_is_normalised(
    tmp_path: Path, emulator_settings: EmulatorSettings, fake_clock: FakeClock, api_version: str
) -> None:
    legacy = emulator_settings.model_copy(update={"format": "legacy"})
    clocked = Clocked(fake_clock)
    async with Emulator(legacy, clock=fake_clock) as emulator:
        settings = settings_for(tmp_path, emulator, api_version=api_version)
        async with BatchService.open(
            settings, transport=emulator.transport(), sleep=clocked.sleep, clock=fake_clock.now
        ) as service:
            uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
            created = await service.create_batch(uploaded.file.id)
            fake_clock.advance(10_000)
            batch = await service.get_batch(created.id)
    assert created.status == "validating"
    assert created.created_at is not None
    assert batch.status == "completed"
    assert batch.completed_at is not None
    assert batch.completed_at.tzinfo is not None


async def test_the_service_opens_an_embedded_emulator_when_nothing_is_configured(tmp_path: Path) -> None:
    settings = Settings.model_validate({"home": tmp_path / "home", "provider": "emulator", "workspace": str(tmp_path)})
    with anyio.fail_after(60):
        async with BatchService.open(settings) as service:
            uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
            batch = await service.create_batch(uploaded.file.id)
            assert service.backend == "emulator"
            assert (await service.get_batch(batch.id)).id == batch.id
    assert (tmp_path / "home" / "state.sqlite3").exists()
    assert (tmp_path / "home" / "emulator").exists()


async def test_fetched_results_are_summarised_and_the_job_knows_its_results_path(
    service: BatchService, tmp_path: Path
) -> None:
    uploaded = await service.upload_file(write_batch_file(tmp_path / "in.jsonl"))
    created = await service.create_batch(uploaded.file.id)
    with anyio.fail_after(30):
        batch = created
        while not batch.terminal:
            batch = await service.get_batch(created.id, wait_seconds=50)
        summary = await service.fetch_results(created.id, output_dir=tmp_path / "out")
    assert summary.counts.succeeded == 3
    assert summary.results_path is not None
    assert await anyio.Path(summary.results_path).is_file()
    assert await service.results_summary(created.id) == summary
    assert (await service.registry_job(created.id)).results_path == summary.results_path


class CountingTransport(httpx2.AsyncBaseTransport):
    """The emulator's transport, counting the requests that reach it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("questions.jsonl", "path"),
        ("data/questions", "path"),
        ("on-disk", "path"),  # no suffix, but a file of that name is in the workspace
        ("batch_abc123", "batch"),
    ],
)
async def test_a_path_or_a_batch_id_given_as_the_input_file_is_refused_before_any_request(
    tmp_path: Path, emulator: Emulator, value: str, kind: str
) -> None:
    (tmp_path / "on-disk").write_text("{}\n", encoding="utf-8")
    transport = CountingTransport(emulator.transport())
    async with BatchService.open(settings_for(tmp_path, emulator), transport=transport) as service:
        with pytest.raises(NotAFileId) as refused:
            await service.create_batch(value)
    assert refused.value.given == kind
    assert refused.value.value == value
    assert transport.requests == 0


async def test_a_file_id_is_never_taken_for_a_path(service: BatchService, tmp_path: Path) -> None:
    (tmp_path / "file-abc123").write_text("{}\n", encoding="utf-8")
    with pytest.raises(NotFound):
        await service.create_batch("file-abc123")


async def test_upload_for_a_deployment_that_does_not_exist_names_the_ones_that_do(
    service: BatchService, emulator: Emulator, tmp_path: Path
) -> None:
    path = write_batch_file(tmp_path / "in.jsonl", model="gpt-5")
    with pytest.raises(UnknownDeployment) as refused:
        await service.upload_file(path)
    assert refused.value.deployment == "gpt-5"
    assert refused.value.known == ["gpt-4o", "gpt-4o-mini"]
    assert "gpt-4o-mini" in str(refused.value)
    assert await emulator.operations.list_files(None) == []


async def test_the_service_knows_the_embedded_emulators_deployments(service: BatchService) -> None:
    assert service.file_rules.deployments == ("gpt-4o", "gpt-4o-mini")


async def test_the_file_rules_are_the_settings_limits_and_the_backends_deployments(
    tmp_path: Path, emulator: Emulator
) -> None:
    settings = settings_for(tmp_path, emulator, max_requests=7, max_bytes=9_000)
    async with BatchService.open(settings, transport=emulator.transport()) as service:
        assert service.file_rules == FileRules(max_requests=7, max_bytes=9_000, deployments=("gpt-4o", "gpt-4o-mini"))
        assert service.poll_seconds == settings.poll_seconds
        assert service.backend == "emulator"


async def test_the_services_parts_are_its_own(service: BatchService) -> None:
    # Callers get what they need from backend, file_rules and poll_seconds, never the client, registry or settings.
    public = {name for name in dir(service) if not name.startswith("_")}
    assert public.isdisjoint({"client", "store", "settings", "deployments", "connection"})


@pytest.mark.parametrize(
    ("method", "arguments"),
    [
        ("get_batch", ("batch_x", 5)),
        ("create_batch", ("file-1", "/chat/completions")),
        ("list_batches", (20,)),
        ("list_files", (20,)),
        ("fetch_results", ("batch_x", Path("out"))),
    ],
)
async def test_parameters_after_the_id_are_keyword_only(
    service: BatchService, method: str, arguments: tuple[object, ...]
) -> None:
    with pytest.raises(TypeError):
        await getattr(service, method)(*arguments)


@pytest.mark.parametrize(
    ("values", "known"),
    [
        ({"provider": "emulator"}, ["gpt-4o", "gpt-4o-mini"]),
        ({"provider": "emulator", "endpoint": "http://127.0.0.1:8765"}, None),  # configured elsewhere
        ({"provider": "azure", "endpoint": "https://r.openai.azure.com", "api_key": "k"}, None),
        ({"provider": "openai", "openai_api_key": "k"}, None),
    ],
)
def test_deployments_are_known_only_for_the_embedded_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: dict[str, object], known: list[str] | None
) -> None:
    monkeypatch.delenv("AOAI_EMULATOR_DEPLOYMENTS", raising=False)
    assert known_deployments(Settings.model_validate({"home": tmp_path, **values})) == known


def test_the_emulators_configured_deployments_are_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_EMULATOR_DEPLOYMENTS", "batch-b=gpt-4o,batch-a=gpt-4o-mini")
    assert known_deployments(Settings.model_validate({"home": tmp_path, "provider": "emulator"})) == [
        "batch-a",
        "batch-b",
    ]


async def test_list_files_pages_newest_first_and_filters_by_purpose(service: BatchService, tmp_path: Path) -> None:
    ids = [(await service.upload_file(write_batch_file(tmp_path / f"in{n}.jsonl"))).file.id for n in range(3)]
    first = await service.list_files(limit=2)
    rest = await service.list_files(limit=2, after=first.last_id)
    outputs = await service.list_files(purpose="batch_output")
    assert [f.id for f in first.files + rest.files] == ids[::-1]
    assert (first.has_more, rest.has_more) == (True, False)
    assert first.files[0].filename == "in2.jsonl"
    assert outputs.files == []
