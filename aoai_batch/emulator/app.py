"""The HTTP face of the emulator: Azure's `/openai/...` (with api-version), `/openai/v1/...`, and OpenAI's `/v1/...`."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from aoai_batch.emulator.api_errors import ApiError, invalid
from aoai_batch.emulator.core import EmulatorCore
from aoai_batch.emulator.gate import Gate, flavor_of, style_for
from aoai_batch.emulator.wire import Style, batch_json, error_json, file_json, list_json

Flavor = Literal["azure", "azure_v1", "openai"]
PREFIXES: dict[Flavor, str] = {"azure_v1": "/openai/v1", "azure": "/openai", "openai": "/v1"}
MAX_JSON_BYTES = 1 << 20
AZURE_MIN_EXPIRY = 1_209_600  # 14 days: Azure's lower bound for expires_after
OPENAI_MIN_EXPIRY = 3_600


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


class Api:
    """The handlers of one flavor of routes."""

    def __init__(self, core: EmulatorCore, flavor: Flavor) -> None:
        self.core = core
        self.flavor = flavor
        self.style: Style = style_for(flavor, core.settings.format)

    def routes(self) -> list[Route]:
        prefix = PREFIXES[self.flavor]
        return [
            Route(f"{prefix}/files", self.upload_file, methods=["POST"]),
            Route(f"{prefix}/files", self.list_files, methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", self.get_file, methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", self.delete_file, methods=["DELETE"]),
            Route(f"{prefix}/files/{{file_id}}/content", self.file_content, methods=["GET"]),
            Route(f"{prefix}/batches", self.create_batch, methods=["POST"]),
            Route(f"{prefix}/batches", self.list_batches, methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}", self.get_batch, methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}/cancel", self.cancel_batch, methods=["POST"]),
        ]

    # files

    async def upload_file(self, request: Request) -> Response:
        length = request.headers.get("content-length")
        min_expiry = OPENAI_MIN_EXPIRY if self.flavor == "openai" else AZURE_MIN_EXPIRY
        record = await self.core.upload(
            request.headers.get("content-type"),
            int(length) if length and length.isdigit() else None,
            request.stream(),
            min_expiry=min_expiry,
        )
        body = file_json(record, self.core.clock.now(), self.style)
        body["status"] = "pending"  # as Azure answers an upload; a read afterwards shows `processed`
        if self.flavor == "openai":
            return json_response(body)
        return json_response(body, 201, {"Location": f"{request.url.path}/{record.id}"})

    async def list_files(self, request: Request) -> Response:
        records = await self.core.list_files(request.query_params.get("purpose"))
        now = self.core.clock.now()
        if self.flavor == "openai":
            if request.query_params.get("order") == "asc":
                records.reverse()
            items, has_more = _page(records, request, default_limit=10_000, max_limit=10_000)
            return json_response(list_json([file_json(r, now, self.style) for r in items], has_more, self.style))
        data = {"object": "list", "data": [file_json(r, now, self.style) for r in records]}
        return json_response(data)

    async def get_file(self, request: Request) -> Response:
        record = await self.core.get_file(request.path_params["file_id"])
        return json_response(file_json(record, self.core.clock.now(), self.style))

    async def delete_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        await self.core.delete_file(file_id)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    async def file_content(self, request: Request) -> Response:
        path = await self.core.content_path(request.path_params["file_id"])
        return FileResponse(path, media_type="application/octet-stream")

    # batches

    async def create_batch(self, request: Request) -> Response:
        record = await self.core.create_batch(await _json_body(request))
        return json_response(batch_json(record, self.style))

    async def list_batches(self, request: Request) -> Response:
        records = await self.core.list_batches()
        items, has_more = _page(records, request, default_limit=20, max_limit=100)
        return json_response(list_json([batch_json(r, self.style) for r in items], has_more, self.style))

    async def get_batch(self, request: Request) -> Response:
        record = await self.core.get_batch(request.path_params["batch_id"])
        return json_response(batch_json(record, self.style))

    async def cancel_batch(self, request: Request) -> Response:
        record = await self.core.cancel_batch(request.path_params["batch_id"])
        return json_response(batch_json(record, self.style))


def _page(records: list[Any], request: Request, *, default_limit: int, max_limit: int) -> tuple[list[Any], bool]:
    """The items after `after` (an id), at most `limit` of them, and whether more follow."""
    raw_limit = request.query_params.get("limit")
    limit = default_limit
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= max_limit:
            raise invalid(f"limit must be a whole number from 1 to {max_limit}.", "limit")
        limit = int(raw_limit)
    after = request.query_params.get("after")
    if after:
        ids = [r.id for r in records]
        records = records[ids.index(after) + 1 :] if after in ids else []
    return records[:limit], len(records) > limit


async def _json_body(request: Request) -> object:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise ApiError(413, "invalidPayload", f"The JSON body is larger than {MAX_JSON_BYTES} bytes.")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise invalid("The body is not valid JSON; send a JSON object.") from None


def _style_of(request: Request, core: EmulatorCore) -> Style:
    return style_for(flavor_of(request.url.path) or "azure", core.settings.format)


def build_app(core: EmulatorCore) -> Starlette:
    """The ASGI app over `core`: routes for each flavor, the gate (auth, api-version, faults), error bodies."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        body = error_json(exc.status, exc.code, exc.message, exc.param, _style_of(request, core))
        return json_response(body, exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            code, message = "invalidPayload", f"{request.method} is not supported on {request.url.path}."
        else:
            code, message = "notFound", f"No route {request.url.path}; see the Azure OpenAI files and batches API."
        body = error_json(exc.status_code, code, message, None, _style_of(request, core))
        return json_response(body, exc.status_code, dict(exc.headers or {}))

    routes: list[Route] = []
    for flavor in PREFIXES:
        routes += Api(core, flavor).routes()
    return Starlette(
        routes=routes,
        middleware=[Middleware(Gate, core=core)],
        exception_handlers={ApiError: api_error, HTTPException: http_error},
    )
