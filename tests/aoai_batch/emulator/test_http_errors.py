"""Bad requests get 4xx answers in Azure's error shape (OpenAI's on /v1), never a 500 or a hang."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import orjson
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.settings import EmulatorSettings
from tests.support.clients import Q

AZURE_CODES = {"conflict", "invalidPayload", "notFound", "unexpectedEntityState", "quotaExceeded", "unauthorized"}


def upload_form(
    content: bytes = b"{}\n", purpose: str | None = "batch", fields: dict[str, str] | None = None
) -> dict[str, Any]:
    data = {"purpose": purpose, **(fields or {})} if purpose is not None else dict(fields or {})
    return {"data": data, "files": {"file": ("in.jsonl", content, "application/jsonl")}}


def assert_azure_error(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] in AZURE_CODES
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"api-key": "wrong"}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic test-key"}, 401),
        ({"api-key": "test-key"}, 200),
        ({"Authorization": "Bearer test-key"}, 200),
    ],
)
async def test_key_is_checked_in_either_header(emulator: Emulator, headers: dict[str, str], status: int) -> None:
    async with httpx2.AsyncClient(transport=emulator.transport(), base_url="http://emu") as client:
        response = await client.get(f"/openai/batches{Q}", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/openai/batches", 400),
        ("GET", "/openai/batches?api-version=2023-05-15", 400),
        ("GET", "/openai/batches?api-version=nonsense", 400),
        ("PUT", f"/openai/batches{Q}", 405),
        ("DELETE", f"/openai/batches/batch_x{Q}", 405),
        ("PATCH", f"/openai/files{Q}", 405),
        ("POST", f"/openai/files/file-x{Q}", 405),
        ("GET", f"/openai/files/file-missing{Q}", 404),
        ("GET", f"/openai/files/file-missing/content{Q}", 404),
        ("DELETE", f"/openai/files/file-missing{Q}", 404),
        ("GET", f"/openai/batches/batch_missing{Q}", 404),
        ("POST", f"/openai/batches/batch_missing/cancel{Q}", 404),
        ("GET", f"/openai/nothing{Q}", 404),
        ("GET", "/openai/v1/nothing", 404),
        ("GET", f"/openai/batches{Q}&limit=0", 400),
        ("GET", f"/openai/batches{Q}&limit=abc", 400),
    ],
)
async def test_wrong_routes_methods_and_versions_are_azure_errors(
    http: httpx2.AsyncClient, method: str, url: str, status: int
) -> None:
    assert_azure_error(await http.request(method, url), status)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b"{}", "input_file_id"),
        (orjson.dumps({"input_file_id": 5, "endpoint": "/chat/completions", "completion_window": "24h"}), None),
        (orjson.dumps({"input_file_id": "f", "endpoint": "/images", "completion_window": "24h"}), "endpoint"),
        (orjson.dumps({"input_file_id": "f", "endpoint": "/chat/completions", "completion_window": "1h"}), None),
        (
            orjson.dumps(
                {"input_file_id": "f", "endpoint": "/chat/completions", "completion_window": "24h", "metadata": [1]}
            ),
            "metadata",
        ),
    ],
)
async def test_bad_create_batch_bodies_are_400(http: httpx2.AsyncClient, body: bytes, param: str | None) -> None:
    error = assert_azure_error(await http.post(f"/openai/batches{Q}", content=body), 400)
    if param:
        assert error["target"] == param


async def test_create_batch_with_unknown_file_is_404(http: httpx2.AsyncClient) -> None:
    body = {"input_file_id": "file-nope", "endpoint": "/chat/completions", "completion_window": "24h"}
    assert_azure_error(await http.post(f"/openai/batches{Q}", json=body), 404)


async def test_huge_json_body_is_413(http: httpx2.AsyncClient) -> None:
    body = b'{"input_file_id": "' + b"x" * (2 << 20) + b'"}'
    assert_azure_error(await http.post(f"/openai/batches{Q}", content=body), 413)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": b"plain body", "headers": {"content-type": "text/plain"}},
        {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}},
        {"content": b"", "headers": {"content-type": "multipart/form-data"}},
        upload_form(purpose=None),
        upload_form(purpose="fine-tune"),
        {"data": {"purpose": "batch"}, "files": {"other": ("a.jsonl", b"{}", "application/jsonl")}},
        upload_form(fields={"expires_after[anchor]": "created_at", "expires_after[seconds]": "60"}),
        upload_form(fields={"expires_after[anchor]": "now", "expires_after[seconds]": "1209600"}),
        upload_form(fields={"expires_after[anchor]": "created_at", "expires_after[seconds]": "soon"}),
    ],
)
async def test_bad_uploads_are_400(http: httpx2.AsyncClient, request_kwargs: dict[str, Any]) -> None:
    assert_azure_error(await http.post(f"/openai/files{Q}", **request_kwargs), 400)


async def test_upload_answers_201_on_azure_and_200_on_openai_paths(http: httpx2.AsyncClient) -> None:
    azure = await http.post(f"/openai/files{Q}", **upload_form())
    openai = await http.post("/v1/files", **upload_form())
    assert azure.status_code == 201
    assert azure.headers["location"].endswith(azure.json()["id"])
    assert openai.status_code == 200
    assert azure.json()["status"] == "pending"


async def test_upload_over_the_size_limit_is_413_and_leaves_no_file(tmp_path: Path, fake_clock: FakeClock) -> None:
    settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, max_bytes=1000)
    async with (
        Emulator(settings, clock=fake_clock) as emulator,
        httpx2.AsyncClient(transport=emulator.transport(), base_url="http://emu") as client,
    ):
        response = await client.post(f"/openai/files{Q}", headers={"api-key": "k"}, **upload_form(b"x" * 5000))
    assert_azure_error(response, 413)
    assert list((tmp_path / "emu" / "files").iterdir()) == []


async def test_files_without_expiry_stop_at_the_quota_but_expiring_ones_do_not(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    settings = EmulatorSettings(home=tmp_path / "emu", time_scale=1.0, max_files_without_expiry=2)
    expiring = {"expires_after[anchor]": "created_at", "expires_after[seconds]": "1209600"}
    async with (
        Emulator(settings, clock=fake_clock) as emulator,
        httpx2.AsyncClient(transport=emulator.transport(), base_url="http://e", headers={"api-key": "k"}) as client,
    ):
        statuses = [(await client.post(f"/openai/files{Q}", **upload_form())).status_code for _ in range(2)]
        refused = await client.post(f"/openai/files{Q}", **upload_form())
        accepted = await client.post(f"/openai/files{Q}", **upload_form(fields=expiring))
    assert statuses == [201, 201]
    assert assert_azure_error(refused, 400)["code"] == "quotaExceeded"
    assert accepted.status_code == 201
    assert accepted.json()["expires_at"] == accepted.json()["created_at"] + 1209600


async def test_openai_paths_answer_in_openai_error_shape(http: httpx2.AsyncClient) -> None:
    response = await http.get("/v1/batches/batch_missing")
    error = response.json()["error"]
    assert response.status_code == 404
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


async def test_concurrent_uploads_and_reads_are_all_answered(http: httpx2.AsyncClient) -> None:
    statuses: list[int] = []

    async def upload() -> None:
        statuses.append((await http.post(f"/openai/files{Q}", **upload_form())).status_code)

    async def listing() -> None:
        statuses.append((await http.get(f"/openai/files{Q}")).status_code)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(upload)
                group.start_soon(listing)
    assert sorted(statuses) == [200] * 10 + [201] * 10
    assert len((await http.get(f"/openai/files{Q}")).json()["data"]) == 10
