"""The `openai` SDK behind `BatchClient`: one SDK client per backend style, and its errors translated once.

This module imports `openai` (about a second); `BatchClient` imports it on first use only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx2
import openai

from aoai_batch.client.connection import EMBEDDED_ENDPOINT, Connection
from aoai_batch.errors import (
    AuthenticationFailed,
    BatchToolError,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)

# Short connect, generous read: list/get answer fast; uploads and downloads of 200 MB take a while.
API_TIMEOUT = httpx2.Timeout(60.0, connect=5.0)
TRANSFER_TIMEOUT = httpx2.Timeout(600.0, connect=5.0)
MAX_RETRIES = 3
SDK_RETRY_AFTER_CAP = 120.0  # the SDK will not wait longer than this for a Retry-After

TokenProvider = Callable[[], Awaitable[str]]


def build_sdk_client(
    connection: Connection,
    *,
    http_client: httpx2.AsyncClient,
    token_provider: TokenProvider | None = None,
    max_retries: int | None = None,
) -> openai.AsyncOpenAI:
    key = connection.api_key.get_secret_value() if connection.api_key else None
    common: dict[str, Any] = {
        "http_client": http_client,
        "max_retries": MAX_RETRIES if max_retries is None else max_retries,
        "timeout": API_TIMEOUT,
    }
    if connection.style == "azure":
        if key is not None:
            return openai.AsyncAzureOpenAI(
                azure_endpoint=connection.base_url, api_version=connection.api_version, api_key=key, **common
            )
        return openai.AsyncAzureOpenAI(
            azure_endpoint=connection.base_url,
            api_version=connection.api_version,
            azure_ad_token_provider=token_provider,
            **common,
        )
    credential: str | TokenProvider | None = key if key is not None else token_provider
    headers = {"api-key": key} if key is not None and connection.style == "v1" else None
    return openai.AsyncOpenAI(
        base_url=connection.base_url, api_key=credential, default_headers=headers, organization=None, **common
    )


def new_http_client(transport: httpx2.AsyncBaseTransport | None) -> httpx2.AsyncClient:
    if transport is None:
        return openai.DefaultAsyncHttpxClient(timeout=API_TIMEOUT)
    return openai.DefaultAsyncHttpxClient(transport=transport, timeout=API_TIMEOUT)


def request_id(headers: Mapping[str, str] | None) -> str | None:
    if headers is None:
        return None
    return headers.get("x-request-id") or headers.get("apim-request-id")


def retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            continue
    return None


def _service_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str) and body["message"].strip():
        return str(body["message"]).strip()
    return f"HTTP {exc.status_code}"


def translate(exc: BaseException, *, connection: Connection) -> BatchToolError | None:
    """The error tree's counterpart of an SDK or transport error (None: not ours to translate)."""
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, connection)
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ConnectionFailed(
            f"No answer in time from {connection.label}.", endpoint_setting=_endpoint_setting(connection)
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return ConnectionFailed(f"Could not reach {connection.label}.", endpoint_setting=_endpoint_setting(connection))
    return None


def _status_error(exc: openai.APIStatusError, connection: Connection) -> BatchToolError:
    rid = request_id(exc.response.headers)
    message = _service_message(exc)
    status = exc.status_code
    if status in (401, 403):
        return AuthenticationFailed(
            f"{connection.label} refused the {_credential_name(connection)} ({message}).",
            backend=connection.backend,
            auth="entra" if connection.uses_entra else "key",
            request_id=rid,
        )
    if status == 404:
        text = message if message != f"HTTP {status}" else f"Not found on {connection.label}."
        return NotFound(text, request_id=rid)
    if status == 429:
        return _rate_limited(exc, message, rid)
    if status >= 500:
        return ServiceUnavailable(f"Server error at {connection.label} ({message}).", request_id=rid)
    return InvalidRequest(f"The service rejected the request: {message}", code=exc.code, request_id=rid)


def _rate_limited(exc: openai.APIStatusError, message: str, rid: str | None) -> RateLimited:
    wait = retry_after(exc.response.headers)
    if wait is not None and wait > SDK_RETRY_AFTER_CAP:
        text = f"Quota exhausted: {message}"
    else:
        text = f"Rate limited: {message}"
    return RateLimited(text, retry_after=wait, request_id=rid)


def _credential_name(connection: Connection) -> str:
    return "Entra ID token" if connection.uses_entra else "key"


def _endpoint_setting(connection: Connection) -> str | None:
    """The variable the address came from (none for the embedded emulator, which is no address at all)."""
    if connection.endpoint == EMBEDDED_ENDPOINT:
        return None
    return "OPENAI_BASE_URL" if connection.backend == "openai" else "AZURE_OPENAI_ENDPOINT"
