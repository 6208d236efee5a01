"""Output and error lines in Azure's shape (see the seed samples), and which requests fail on purpose."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import orjson

FAILURE_STATUS = 500
FAILURE_CODE = "server_error"

# (custom_id, request_id, request body) -> the whole output line of a request answered with status 200.
Answerer = Callable[[str, bytes, dict[str, Any]], bytes]


def output_line(custom_id: str, request_id: str, body: dict[str, Any], status_code: int = 200) -> bytes:
    """A request that got an answer (status 200) or an HTTP error (its error body)."""
    response = {"body": body, "request_id": request_id, "status_code": status_code}
    return orjson.dumps({"custom_id": custom_id, "response": response, "error": None}) + b"\n"


# The frame of a line answered with status 200: custom_id (JSON), body (JSON), request id.
ANSWER_HEAD = b'{"custom_id":%s,"response":{"body":'
ANSWER_TAIL = b',"request_id":"%s","status_code":200},"error":null}\n'
ANSWER_LINE = ANSWER_HEAD + b"%s" + ANSWER_TAIL


def answer_line(custom_id: str, request_id: str, body_json: bytes) -> bytes:
    """A request answered with status 200; `body_json` is the answer already serialised."""
    return ANSWER_LINE % (orjson.dumps(custom_id), body_json, request_id.encode())


def answer_line_template(body_template: bytes) -> bytes:
    """A `%` template of a whole answered line, for engines that fill lines in one step: its fields are the
    custom_id's JSON, the body template's own fields, then the request id."""
    return ANSWER_HEAD + body_template + ANSWER_TAIL


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "param": None, "type": None}}


def failed_line(custom_id: str, request_id: str, status_code: int, code: str, message: str) -> bytes:
    """A request the service answered with an error status."""
    return output_line(custom_id, request_id, error_body(code, message), status_code)


def unrun_line(custom_id: str, code: str, message: str) -> bytes:
    """A request that never ran (e.g. `batch_expired`): no response, only an error."""
    return orjson.dumps({"custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}) + b"\n"


def fails_on_purpose(custom_id: str, fail_rate: float) -> bool:
    """Deterministic per custom_id: the same ids fail on every run with the same rate."""
    if fail_rate <= 0:
        return False
    return zlib.crc32(custom_id.encode()) / 0x1_0000_0000 < fail_rate


def injected_failure(custom_id: str, request_id: str) -> bytes:
    message = "The server had an error while processing your request (injected by the emulator's fail rate)."
    return failed_line(custom_id, request_id, FAILURE_STATUS, FAILURE_CODE, message)
