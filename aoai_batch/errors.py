"""The error tree. Each leaf matches what the caller does next: fix input, authenticate, wait, or give up."""

from __future__ import annotations


class BatchToolError(Exception):
    """Base of every expected failure; `str()` is a message a person can act on."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message


class InvalidInput(BatchToolError):
    """Local input is wrong (a path, a parameter, a file): fix it and try again."""


class PathNotAllowed(InvalidInput):
    """A path resolves outside the workspace folders."""


class NotFound(BatchToolError):
    """The batch or file does not exist (or not on this resource)."""


class NotReady(BatchToolError):
    """The batch is not in a state that allows this yet (e.g. results of a running batch)."""


class InvalidRequest(BatchToolError):
    """The service rejected the request; `code` is Azure's error code when it sent one."""

    def __init__(self, message: str, *, code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.code = code


class AuthenticationFailed(BatchToolError):
    """Credentials are missing, wrong, or not allowed: set a key or sign in."""


class RateLimited(BatchToolError):
    """Quota or rate limit reached; retry after `retry_after` seconds when known."""

    def __init__(self, message: str, *, retry_after: float | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.retry_after = retry_after


class ServiceUnavailable(BatchToolError):
    """The service answered with a server error: retry later."""


class ConnectionFailed(BatchToolError):
    """The service could not be reached: check the endpoint and the network."""


class NotWritable(InvalidInput):
    """Files cannot be written into `folder` (permissions, a read-only disk, not a folder): choose another."""

    def __init__(self, message: str, *, folder: str) -> None:
        super().__init__(message)
        self.folder = folder


class NoSpace(BatchToolError):
    """The disk (or quota) holding `folder` is full: free some space, or write somewhere else."""

    def __init__(self, message: str, *, folder: str) -> None:
        super().__init__(message)
        self.folder = folder


class RegistryLocked(BatchToolError):
    """Another process has held the job registry's lock for too long: wait for it, or stop it, and try again."""
