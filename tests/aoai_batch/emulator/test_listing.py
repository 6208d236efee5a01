"""`GET /files` pages as OpenAI documents it (`limit`, `after`, `order`, `has_more`, `first_id`, `last_id`)
on every route flavor, so the SDK's `for f in client.files.list()` ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from openai import AzureOpenAI, OpenAI

from aoai_batch.emulator import Emulator
from tests.support.clients import API_VERSION, Q
from tests.support.http_server import EmulatorServer

FILES = 5
LIST_PATHS = {"azure": "/openai/files", "azure_v1": "/openai/v1/files", "openai": "/v1/files"}


FORM: dict[str, Any] = {"data": {"purpose": "batch"}, "files": {"file": ("in.jsonl", b"{}\n", "application/jsonl")}}


def sync_client(flavor: str, server: EmulatorServer) -> OpenAI:
    if flavor == "azure":
        return AzureOpenAI(azure_endpoint=server.url, api_key=server.key, api_version=API_VERSION, max_retries=0)
    prefix = "/openai/v1" if flavor == "azure_v1" else "/v1"
    return OpenAI(base_url=server.url + prefix, api_key=server.key, max_retries=0)


@pytest.fixture
def uploaded(emulator_server: EmulatorServer) -> list[str]:
    """The ids of FILES uploaded files, oldest first (one clock second apart)."""
    ids: list[str] = []
    with httpx2.Client(base_url=emulator_server.url, headers={"api-key": emulator_server.key}) as http:
        for _ in range(FILES):
            ids.append(http.post(f"/openai/files{Q}", **FORM).raise_for_status().json()["id"])
            emulator_server.clock.advance(1)
    return ids


@pytest.mark.parametrize("flavor", ["azure", "azure_v1", "openai"])
@pytest.mark.parametrize("limit", [2, None])
async def test_the_sdks_files_list_loop_ends_with_every_file_once(
    emulator_server: EmulatorServer, uploaded: list[str], flavor: str, limit: int | None
) -> None:
    def every_file() -> list[str]:
        with sync_client(flavor, emulator_server) as client:
            pages = client.files.list(limit=limit) if limit else client.files.list()
            return [f.id for f in pages]  # the loop the issue reports as never ending

    with anyio.fail_after(20):
        listed = await anyio.to_thread.run_sync(every_file, abandon_on_cancel=True)
    assert listed == uploaded[::-1]


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx2.AsyncClient]:
    headers = {"api-key": emulator.key}
    async with httpx2.AsyncClient(transport=emulator.transport(), base_url="http://emu", headers=headers) as client:
        for _ in range(FILES):
            (await client.post(f"/openai/files{Q}", **FORM)).raise_for_status()
        yield client


async def listing(http: httpx2.AsyncClient, flavor: str, **params: str) -> dict[str, Any]:
    version = {"api-version": API_VERSION} if flavor == "azure" else {}
    response = await http.get(LIST_PATHS[flavor], params={**version, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("flavor", ["azure", "azure_v1", "openai"])
async def test_files_list_pages_with_limit_after_and_cursors(http: httpx2.AsyncClient, flavor: str) -> None:
    everything = await listing(http, flavor)
    ids = [f["id"] for f in everything["data"]]
    first = await listing(http, flavor, limit="2")
    second = await listing(http, flavor, limit="2", after=first["last_id"])
    last = await listing(http, flavor, limit="2", after=ids[3])
    assert len(ids) == FILES
    assert everything["has_more"] is False
    assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[0], ids[1], True)
    assert [f["id"] for f in second["data"]] == ids[2:4]
    assert ([f["id"] for f in last["data"]], last["has_more"]) == ([ids[4]], False)


@pytest.mark.parametrize("flavor", ["azure", "azure_v1", "openai"])
async def test_files_list_newest_first_unless_order_asc(http: httpx2.AsyncClient, flavor: str) -> None:
    default = [f["id"] for f in (await listing(http, flavor))["data"]]
    desc = [f["id"] for f in (await listing(http, flavor, order="desc"))["data"]]
    asc = [f["id"] for f in (await listing(http, flavor, order="asc"))["data"]]
    asc_page = await listing(http, flavor, order="asc", limit="2", after=asc[1])
    assert default == desc == asc[::-1]
    assert [f["id"] for f in asc_page["data"]] == asc[2:4]


async def test_files_list_by_purpose(http: httpx2.AsyncClient) -> None:
    batch = await listing(http, "azure", purpose="batch")
    output = await listing(http, "azure", purpose="batch_output")
    assert len(batch["data"]) == FILES
    assert output["data"] == []
    assert output["has_more"] is False


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "two"}, "limit"),
        ({"order": "newest"}, "order"),
        ({"order": "ASC"}, "order"),
    ],
)
async def test_bad_files_list_parameters_are_400(http: httpx2.AsyncClient, params: dict[str, str], target: str) -> None:
    response = await http.get("/openai/files", params={"api-version": API_VERSION, **params})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalidPayload"
    assert response.json()["error"]["target"] == target
