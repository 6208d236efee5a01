"""The HTTP face of the emulator: Azure's `/openai/...` (with api-version), `/openai/v1/...`, and OpenAI's `/v1/...`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from aoai_batch.emulator.api_errors import ApiError, invalid
from aoai_batch.emulator.expiry import AZURE_MIN_SECONDS, OPENAI_MIN_SECONDS
from aoai_batch.emulator.gate import Gate, RouteFlavor, flavor_of, style_for
from aoai_batch.emulator.listing import (
    BATCHES_DEFAULT_LIMIT,
    BATCHES_MAX_LIMIT,
    FILES_DEFAULT_LIMIT,
    FILES_MAX_LIMIT,
    Page,
    by_created_at,
    file_order,
)
from aoai_batch.emulator.odata import batch_query
from aoai_batch.emulator.operations import Operations
from aoai_batch.emulator.wire import Style, batch_json, error_json, file_json, list_json

PREFIXES: dict[RouteFlavor, str] = {"azure_v1": "/openai/v1", "azure": "/openai", "openai": "/v1"}
MAX_JSON_BYTES = 1 << 20


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


class Api:
    """The handlers of one flavor of routes."""

    def __init__(self, operations: Operations, flavor: RouteFlavor) -> None:
        self.operations = operations
        self.flavor = flavor
        self.style: Style = style_for(flavor, operations.settings.format)
        self.min_expiry = OPENAI_MIN_SECONDS if flavor == "openai" else AZURE_MIN_SECONDS

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
        record = await self.operations.upload(
            request.headers.get("content-type"),
            int(length) if length and length.isdigit() else None,
            request.stream(),
            min_expiry=self.min_expiry,
        )
        body = file_json(record, self.operations.clock.now(), self.style)
        body["status"] = "pending"  # as Azure answers an upload; a read afterwards shows `processed`
        if self.flavor == "openai":
            return json_response(body)
        return json_response(body, 201, {"Location": f"{request.url.path}/{record.id}"})

    async def list_files(self, request: Request) -> Response:
        query = request.query_params
        page = Page.from_query(query, default_limit=FILES_DEFAULT_LIMIT, max_limit=FILES_MAX_LIMIT)
        records = by_created_at(await self.operations.list_files(query.get("purpose")), descending=file_order(query))
        items, has_more = page.take(records)
        now = self.operations.clock.now()
        return json_response(list_json([file_json(r, now, self.style) for r in items], has_more, self.style))

    async def get_file(self, request: Request) -> Response:
        record = await self.operations.get_file(request.path_params["file_id"])
        return json_response(file_json(record, self.operations.clock.now(), self.style))

    async def delete_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        await self.operations.delete_file(file_id)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    async def file_content(self, request: Request) -> Response:
        path = await self.operations.content_path(request.path_params["file_id"])
        return FileResponse(path, media_type="application/octet-stream")

    # batches

    async def create_batch(self, request: Request) -> Response:
        record = await self.operations.create_batch(await _json_body(request), min_expiry=self.min_expiry)
        return json_response(batch_json(record, self.style))

    async def list_batches(self, request: Request) -> Response:
        query = request.query_params
        clauses, descending = batch_query(query)
        page = Page.from_query(query, default_limit=BATCHES_DEFAULT_LIMIT, max_limit=BATCHES_MAX_LIMIT)
        records = by_created_at(await self.operations.list_batches(), descending=descending)
        items, has_more = page.take([r for r in records if all(clause(r) for clause in clauses)])
        return json_response(list_json([batch_json(r, self.style) for r in items], has_more, self.style))

    async def get_batch(self, request: Request) -> Response:
        record = await self.operations.get_batch(request.path_params["batch_id"])
        return json_response(batch_json(record, self.style))

    async def cancel_batch(self, request: Request) -> Response:
        record = await self.operations.cancel_batch(request.path_params["batch_id"])
        return json_response(batch_json(record, self.style))


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


def _style_of(request: Request, operations: Operations) -> Style:
    return style_for(flavor_of(request.url.path) or "azure", operations.settings.format)


def build_app(operations: Operations) -> Starlette:
    """The ASGI app over `operations`: routes for each flavor, the gate (auth, api-version, faults), error bodies."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        body = error_json(exc.status, exc.code, exc.message, exc.param, _style_of(request, operations))
        return json_response(body, exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            code, message = "invalidPayload", f"{request.method} is not supported on {request.url.path}."
        else:
            code, message = "notFound", f"No route {request.url.path}; see the Azure OpenAI files and batches API."
        body = error_json(exc.status_code, code, message, None, _style_of(request, operations))
        return json_response(body, exc.status_code, dict(exc.headers or {}))

    routes: list[Route] = []
    for flavor in PREFIXES:
        routes += Api(operations, flavor).routes()
    return Starlette(
        routes=routes,
        middleware=[Middleware(Gate, operations=operations)],
        exception_handlers={ApiError: api_error, HTTPException: http_error},
    )
