"""The one exception the emulator's handlers raise; rendered in Azure's or OpenAI's error shape."""

from __future__ import annotations

from typing import Literal

# Azure's ErrorCode values (the spec's enum) used by the emulator.
AzureCode = Literal[
    "conflict",
    "invalidPayload",
    "forbidden",
    "notFound",
    "unexpectedEntityState",
    "serviceUnavailable",
    "internalFailure",
    "quotaExceeded",
    "tooManyRequests",
    "unauthorized",
    "token_limit_exceeded",  # not in the spec's enum: what Azure answers a create beyond the enqueued-token quota
]


class ApiError(Exception):
    """An HTTP error answer: status, Azure code, a message saying what to do, and the parameter at fault."""

    def __init__(self, status: int, code: AzureCode, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code: AzureCode = code
        self.message = message
        self.param = param


def not_found(kind: str, item_id: str) -> ApiError:
    return ApiError(404, "notFound", f"No {kind} with id {item_id!r}.")  # what to do next is the client's to say


def invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, "invalidPayload", message, param=param)
