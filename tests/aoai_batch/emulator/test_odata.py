"""`GET /batches` with `$filter` and `$orderby`: the parser on its own, then over HTTP and through the SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import openai
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.emulator.api_errors import ApiError
from aoai_batch.emulator.odata import CreatedAt, StatusIs, parse_filter, parse_orderby, version_allows
from tests.support.batch_files import write_batch_file
from tests.support.clients import API_VERSION, azure_client, upload

GOOD_FILTERS: list[tuple[str, list[CreatedAt | StatusIs]]] = [
    ("created_at gt 1728773533", [CreatedAt("gt", 1728773533)]),
    ("created_at lt 5", [CreatedAt("lt", 5)]),
    ("status eq 'Completed'", [StatusIs("completed")]),
    ("status eq 'InProgress'", [StatusIs("in_progress")]),
    ("status eq 'in_progress'", [StatusIs("in_progress")]),
    (
        "created_at gt 1728773533 and created_at lt 1729032733 and status eq 'Completed'",
        [CreatedAt("gt", 1728773533), CreatedAt("lt", 1729032733), StatusIs("completed")],
    ),
    ("  created_at  gt 1  and status eq 'Failed' ", [CreatedAt("gt", 1), StatusIs("failed")]),
]
BAD_FILTERS = [
    "",
    "created_at",
    "created_at gt",
    "created_at ge 5",
    "created_at eq 5",
    "created_at gt 'x'",
    "created_at gt 1.5",
    "created_at gt1",
    "status eq Completed",
    "status ne 'Completed'",
    "status eq 'Done'",
    "status eq 'COMPLETED'",
    "status eq 'Completed' or status eq 'Failed'",
    "created_at gt 1 and",
    "and created_at gt 1",
    "created_at gt 1 created_at lt 2",
    "(created_at gt 1)",
    "CREATED_AT gt 1",
    "created_at GT 1",
    "endpoint eq '/chat/completions'",
]


@pytest.mark.parametrize(("text", "clauses"), GOOD_FILTERS)
def test_supported_filters_parse_into_clauses(text: str, clauses: list[CreatedAt | StatusIs]) -> None:
    assert parse_filter(text) == clauses


@pytest.mark.parametrize("text", BAD_FILTERS)
def test_anything_else_in_a_filter_is_a_400(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_filter(text)
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "invalidPayload", "$filter")


@pytest.mark.parametrize(
    ("text", "descending"), [("created_at asc", False), ("created_at desc", True), ("created_at", False)]
)
def test_orderby_created_at_asc_or_desc(text: str, descending: bool) -> None:
    assert parse_orderby(text) is descending


@pytest.mark.parametrize("text", ["", "created_at up", "id asc", "created_at asc, id desc", "created_at desc asc"])
def test_any_other_orderby_is_a_400(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_orderby(text)
    assert (caught.value.status, caught.value.param) == (400, "$orderby")


@pytest.mark.parametrize(
    ("version", "allowed"),
    [
        ("2024-10-01-preview", True),
        ("2024-10-21", True),
        ("2025-03-01-preview", True),
        ("v1", True),
        (None, True),
        ("2024-08-01-preview", False),
        ("2024-07-01-preview", False),
    ],
)
def test_filters_need_an_api_version_from_2024_10_01_preview_on(version: str | None, allowed: bool) -> None:
    assert version_allows(version) is allowed


# Three batches, 100 clock seconds apart: the first fails validation, the other two complete.
START = 1_728_800_000.0


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def batches(emulator: Emulator, fake_clock: FakeClock, tmp_path: Path) -> list[str]:
    """The ids of the three batches, oldest first; the clock is then past their end."""
    ids: list[str] = []
    async with azure_client("http://emu", emulator.key, emulator.transport()) as client:
        for index in range(3):
            path = write_batch_file(tmp_path / f"in{index}.jsonl", count=2)
            if index == 0:
                path.write_bytes(path.read_bytes() * 2)  # duplicate custom ids: this batch fails
            file_id = await upload(client, path)
            batch = await client.batches.create(
                input_file_id=file_id,
                # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
                endpoint="/chat/completions",  # type: ignore[arg-type]
                completion_window="24h",
            )
            ids.append(batch.id)
            fake_clock.advance(100)
    fake_clock.advance(10 * 86_400)
    return ids


async def listed(http: httpx2.AsyncClient, version: str = API_VERSION, **params: str) -> list[str]:
    response = await http.get("/openai/batches", params={"api-version": version, **params})
    assert response.status_code == 200, response.text
    return [b["id"] for b in response.json()["data"]]


T0 = int(START)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [2, 1, 0]),
        ({"$orderby": "created_at asc"}, [0, 1, 2]),
        ({"$orderby": "created_at desc"}, [2, 1, 0]),
        ({"$filter": f"created_at gt {T0}"}, [2, 1]),
        ({"$filter": f"created_at lt {T0 + 150}"}, [1, 0]),
        ({"$filter": f"created_at gt {T0} and created_at lt {T0 + 150}"}, [1]),
        ({"$filter": "status eq 'Completed'", "$orderby": "created_at asc"}, [1, 2]),
        ({"$filter": "status eq 'Failed'"}, [0]),
        ({"$filter": "status eq 'Cancelled'"}, []),
        ({"$filter": "status eq 'Completed'", "limit": "1"}, [2]),
    ],
)
async def test_filter_and_orderby_select_and_sort_batches_over_http(
    http: httpx2.AsyncClient, batches: list[str], params: dict[str, str], expected: list[int]
) -> None:
    assert await listed(http, **params) == [batches[i] for i in expected]


async def test_the_seeds_filter_works_with_their_api_version_and_percent_encoding(
    http: httpx2.AsyncClient, batches: list[str]
) -> None:
    query = (
        "api-version=2024-10-01-preview&$filter=created_at%20gt%201728773533%20and%20created_at%20lt%20"
        "1729032733%20and%20status%20eq%20'Completed'&$orderby=created_at%20asc"
    )
    response = await http.get(f"/openai/batches?{query}")
    assert [b["id"] for b in response.json()["data"]] == batches[1:]


async def test_filtered_pages_follow_the_after_cursor(http: httpx2.AsyncClient, batches: list[str]) -> None:
    params = {"$filter": "status eq 'Completed'", "$orderby": "created_at asc", "limit": "1"}
    first = await http.get("/openai/batches", params={"api-version": API_VERSION, **params})
    second = await listed(http, **params, after=first.json()["last_id"])
    assert (first.json()["has_more"], second) == (True, [batches[2]])


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"$filter": "status eq 'Done'"}, "$filter"),
        ({"$filter": "created_at ge 5"}, "$filter"),
        ({"$orderby": "id asc"}, "$orderby"),
        ({"$filter": "created_at gt 1", "api-version": "2024-08-01-preview"}, "api-version"),
    ],
)
async def test_an_unsupported_expression_is_a_400_in_azures_error_body(
    http: httpx2.AsyncClient, batches: list[str], params: dict[str, str], target: str
) -> None:
    response = await http.get("/openai/batches", params={"api-version": API_VERSION, **params})
    error: dict[str, Any] = response.json()["error"]
    assert response.status_code == 400
    assert (error["code"], error["target"]) == ("invalidPayload", target)
    assert set(error) == {"code", "message", "target"}


async def test_the_sdk_sends_filter_and_orderby_as_extra_query(emulator: Emulator, batches: list[str]) -> None:
    query = {"$filter": "status eq 'Completed'", "$orderby": "created_at asc"}
    with anyio.fail_after(20):
        async with azure_client("http://emu", emulator.key, emulator.transport()) as client:
            page = client.batches.list(extra_query=query)
            ids = [batch.id async for batch in page]
            with pytest.raises(openai.BadRequestError) as caught:
                await client.batches.list(extra_query={"$filter": "status eq 'Finished'"})
    assert ids == batches[1:]
    assert caught.value.status_code == 400
