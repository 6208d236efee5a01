"""The client on the wire: URLs, auth headers and single odd responses (httpx2.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import httpx2
import pytest
from pydantic import SecretStr

from aoai_batch.client import BatchClient, Connection, connection_from_settings
from aoai_batch.client.core import CountingFile
from aoai_batch.errors import (
    AuthenticationFailed,
    BatchToolError,
    ConnectionFailed,
    InvalidInput,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    SignInFailed,
)
from aoai_batch.settings import Settings
from tests.support.credentials import FakeCredential

BATCH = {"id": "batch_1", "object": "batch", "status": "Validating", "endpoint": "/chat/completions"}
ENDPOINT = "https://res.openai.azure.com"

Handler = Callable[[httpx2.Request], httpx2.Response]


def azure(key: str | None = "secret", version: str = "2024-10-21") -> Connection:
    return Connection(
        backend="azure",
        style="v1" if version == "v1" else "azure",
        endpoint=ENDPOINT,
        api_version=None if version == "v1" else version,
        api_key=SecretStr(key) if key else None,
        token_scope="https://cognitiveservices.azure.com/.default",
    )


def recording(requests: list[httpx2.Request], answer: Handler) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return answer(request)

    return httpx2.MockTransport(handler)


def ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json=BATCH)


@pytest.mark.parametrize(
    ("connection", "url", "header", "value"),
    [
        (azure(), f"{ENDPOINT}/openai/batches/batch_1?api-version=2024-10-21", "api-key", "secret"),
        (azure(version="v1"), f"{ENDPOINT}/openai/v1/batches/batch_1", "api-key", "secret"),
        (
            Connection(backend="openai", style="openai", endpoint="https://api.openai.com/v1", api_key=SecretStr("sk")),
            "https://api.openai.com/v1/batches/batch_1",
            "authorization",
            "Bearer sk",
        ),
    ],
)
async def test_each_api_style_calls_its_url_with_its_auth_header(
    connection: Connection, url: str, header: str, value: str
) -> None:
    requests: list[httpx2.Request] = []
    async with BatchClient(connection, transport=recording(requests, ok)) as client:
        batch = await client.get_batch("batch_1")
    assert batch.status == "validating"
    assert str(requests[0].url) == url
    assert requests[0].headers[header] == value


@pytest.mark.parametrize("version", ["2024-10-21", "v1"])
async def test_entra_id_sends_a_bearer_token_and_closes_the_credential(version: str) -> None:
    requests: list[httpx2.Request] = []
    credential = FakeCredential()
    async with BatchClient(
        azure(key=None, version=version), transport=recording(requests, ok), credential=credential
    ) as client:
        await client.get_batch("batch_1")
    assert requests[0].headers["authorization"] == "Bearer fake-token"
    assert "api-key" not in requests[0].headers
    assert credential.scopes[0] == ("https://cognitiveservices.azure.com/.default",)
    assert credential.closed


async def test_a_credential_failure_is_an_authentication_error_before_any_request() -> None:
    requests: list[httpx2.Request] = []
    async with BatchClient(
        azure(key=None), transport=recording(requests, ok), credential=FakeCredential(fail=True)
    ) as client:
        with pytest.raises(SignInFailed) as caught:
            await client.get_batch("batch_1")
    assert caught.value.auth == "entra"  # what to run is the edges' to say (server/cli_support, tools/deps)
    assert requests == []


def error(status: int, body: object, headers: dict[str, str] | None = None) -> Handler:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body, headers=headers or {})

    return answer


AZURE_ERROR = {"error": {"code": "invalid_request", "message": "The input file is invalid."}}


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (error(401, {"error": {"code": "401", "message": "Access denied"}}), AuthenticationFailed),
        (error(403, {"error": {"code": "PermissionDenied", "message": "no role"}}), AuthenticationFailed),
        (error(404, {"error": {"code": "404", "message": "Resource not found"}}), NotFound),
        (error(400, AZURE_ERROR), InvalidRequest),
        (error(409, AZURE_ERROR), InvalidRequest),
        (error(405, {"error": {"code": "MethodNotAllowed", "message": "no"}}), InvalidRequest),
        (error(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}), ServiceUnavailable),
        (error(429, {"error": {"code": "429", "message": "quota"}}, {"retry-after": "86400"}), RateLimited),
        (lambda request: httpx2.Response(200, text="<html>proxy</html>"), ServiceUnavailable),
        (lambda request: httpx2.Response(200, json=["not", "an", "object"]), ServiceUnavailable),
    ],
)
async def test_service_answers_become_the_error_tree(answer: Handler, kind: type[BatchToolError]) -> None:
    async with BatchClient(azure(), transport=httpx2.MockTransport(answer), max_retries=0) as client:
        with pytest.raises(kind):
            await client.get_batch("batch_1")


async def test_an_invalid_request_keeps_azures_code_and_the_request_id() -> None:
    answer = error(400, AZURE_ERROR, {"apim-request-id": "req-42"})
    async with BatchClient(azure(), transport=httpx2.MockTransport(answer), max_retries=0) as client:
        with pytest.raises(InvalidRequest) as caught:
            await client.get_batch("batch_1")
    assert caught.value.code == "invalid_request"
    assert caught.value.request_id == "req-42"


async def test_a_retry_after_beyond_the_sdk_cap_is_quota_exhausted_without_retrying() -> None:
    requests: list[httpx2.Request] = []
    answer = error(429, {"error": {"code": "429", "message": "Token quota exceeded"}}, {"retry-after": "7200"})
    async with BatchClient(azure(), transport=recording(requests, answer)) as client:
        with pytest.raises(RateLimited) as caught:
            await client.get_batch("batch_1")
    assert caught.value.retry_after == 7200
    assert len(requests) == 1


async def test_a_short_retry_after_is_retried_by_the_sdk() -> None:
    answers = [error(429, AZURE_ERROR, {"retry-after-ms": "1"}), error(503, AZURE_ERROR, {"retry-after-ms": "1"}), ok]
    requests: list[httpx2.Request] = []
    with anyio.fail_after(30):
        async with BatchClient(
            azure(), transport=recording(requests, lambda r: answers[len(requests) - 1](r))
        ) as client:
            batch = await client.get_batch("batch_1")
    assert batch.id == "batch_1"
    assert len(requests) == 3


async def test_a_refused_connection_is_a_connection_error() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    async with BatchClient(azure(), transport=httpx2.MockTransport(refuse), max_retries=0) as client:
        with pytest.raises(ConnectionFailed):
            await client.get_batch("batch_1")


@pytest.mark.parametrize("batch_id", ["", "   "])
async def test_an_empty_id_is_refused_before_any_request(batch_id: str) -> None:
    requests: list[httpx2.Request] = []
    async with BatchClient(azure(), transport=recording(requests, ok)) as client:
        with pytest.raises(InvalidInput):
            await client.get_batch(batch_id)
    assert requests == []


async def test_a_status_filter_scans_pages_until_enough_match() -> None:
    pages = {
        None: {"data": [{**BATCH, "id": "b3", "status": "completed"}, {**BATCH, "id": "b2"}], "has_more": True},
        "b2": {"data": [{**BATCH, "id": "b1", "status": "Completed"}, {**BATCH, "id": "b0"}], "has_more": False},
    }

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=pages[request.url.params.get("after")])

    async with BatchClient(azure(), transport=httpx2.MockTransport(answer)) as client:
        page = await client.list_batches(limit=5, status="completed")
    assert [batch.id for batch in page.batches] == ["b3", "b1"]
    assert page.has_more is False


async def test_openai_batches_are_created_for_its_v1_endpoint_path(tmp_path: Path) -> None:
    requests: list[httpx2.Request] = []
    connection = Connection(
        backend="openai", style="openai", endpoint="https://api.openai.com/v1", api_key=SecretStr("sk")
    )
    async with BatchClient(connection, transport=recording(requests, ok)) as client:
        await client.create_batch("file-1", endpoint="/chat/completions")
    body = httpx2.Response(200, content=requests[-1].content).json()
    assert body["endpoint"] == "/v1/chat/completions"
    assert "idempotency_key" in body["metadata"]


@pytest.mark.parametrize(
    ("env", "backend", "style", "uses_entra"),
    [
        ({"endpoint": ENDPOINT, "api_key": "k"}, "azure", "azure", False),
        ({"endpoint": ENDPOINT}, "azure", "azure", True),
        ({"endpoint": ENDPOINT, "api_key": "k", "auth": "entra"}, "azure", "azure", True),
        ({"endpoint": ENDPOINT, "api_key": "k", "api_version": "v1"}, "azure", "v1", False),
        ({"endpoint": f"{ENDPOINT}/openai/v1/", "api_key": "k"}, "azure", "v1", False),
        ({"openai_api_key": "sk"}, "openai", "openai", False),
        ({"endpoint": "http://127.0.0.1:9", "provider": "emulator"}, "emulator", "azure", False),
    ],
)
def test_settings_choose_the_connection(env: dict[str, str], backend: str, style: str, uses_entra: bool) -> None:
    connection = connection_from_settings(Settings.model_validate(env))
    assert (connection.backend, connection.style, connection.uses_entra) == (backend, style, uses_entra)


@pytest.mark.parametrize("env", [{}, {"provider": "openai"}, {"endpoint": ENDPOINT, "auth": "key"}])
def test_settings_without_what_a_backend_needs_are_an_input_error(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        connection_from_settings(Settings.model_validate(env))


def test_the_upload_file_counts_what_was_read_and_a_rewind_resets_the_count(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"x" * 1000)
    with CountingFile(path) as handle:
        handle.read(300)
        handle.read(300)
        assert handle.sent == 600
        handle.seek(0)
        assert handle.sent == 0
        handle.read()
        assert handle.sent == 1000


async def test_a_failed_upload_with_progress_raises_the_plain_error(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"custom_id": "a"}\n')
    calls: list[str | None] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        calls.append(message)

    answer = error(400, AZURE_ERROR)
    async with BatchClient(azure(), transport=httpx2.MockTransport(answer), max_retries=0) as client:
        with pytest.raises(InvalidRequest):
            await client.upload_file(path, progress=progress)
    assert calls
