"""The error tree. Each leaf matches what the caller does next: fix input, authenticate, wait, or give up.

Errors carry what happened, and the facts an edge needs to say what to do next (the setting that is
missing, the provider and auth mode that were refused, when to retry, what was not found). The advice
itself is added once, at each edge, in its own words: the CLI (`server/cli_support.py`) names commands
and flags, the tools (`tools/deps.py`) name tools and parameters. Messages here name neither.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # models bring pydantic, which `validate`'s process does without (bench/validate.py)
    from aoai_batch.models import Backend

AuthMode = Literal["key", "entra"]
Missing = Literal["batch", "file"]
KEY_SETTINGS: dict[Backend, str] = {
    "azure": "AZURE_OPENAI_API_KEY",
    "emulator": "AZURE_OPENAI_API_KEY",
    "openai": "OPENAI_API_KEY",
}
# How a service's own message tells when to retry ("Please retry after 30 seconds", "Retry after 1 seconds").
RETRY_WHEN = re.compile(r"\bretry (after|in) \d", re.IGNORECASE)


class BatchToolError(Exception):
    """Base of every expected failure; `str()` says what happened."""

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


class FileInTheWay(InvalidInput):
    """A file to be written already exists, and replacing it was not asked for."""

    def __init__(self, path: Path | str, message: str | None = None) -> None:
        super().__init__(message or f"{path} already exists.")
        self.path = Path(path)


class InvalidBatchFile(InvalidInput):
    """A batch file has issues (so it was not uploaded); the validation report lists them all."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class NotConfigured(InvalidInput):
    """A setting the chosen backend needs is not set; `setting` is its environment variable."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class NotFound(BatchToolError):
    """The batch or file does not exist (or not on this resource); `missing` says which, when known."""

    def __init__(self, message: str, *, missing: Missing | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.missing = missing


class NotReady(BatchToolError):
    """Not in a state that allows this yet; `batch_id` is set when it is a batch still running."""

    def __init__(self, message: str, *, batch_id: str | None = None) -> None:
        super().__init__(message)
        self.batch_id = batch_id


class InvalidRequest(BatchToolError):
    """The service rejected the request; `code` is Azure's error code when it sent one."""

    def __init__(self, message: str, *, code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.code = code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (code {self.code})" if self.code and self.code not in text else text


class AuthenticationFailed(BatchToolError):
    """The service refused the credentials of `backend`, sent by `auth` (a key, or an Entra ID token)."""

    def __init__(
        self, message: str, *, backend: Backend = "azure", auth: AuthMode = "key", request_id: str | None = None
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.backend: Backend = backend
        self.auth: AuthMode = auth

    @property
    def key_setting(self) -> str:
        """The environment variable the key of this backend comes from."""
        return KEY_SETTINGS[self.backend]


class SignInFailed(AuthenticationFailed):
    """No Entra ID token could be had (no `az login`, no managed identity, no service principal)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, backend="azure", auth="entra")


class RateLimited(BatchToolError):
    """Quota or rate limit reached; retry after `retry_after` seconds when known."""

    def __init__(self, message: str, *, retry_after: float | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.retry_after = retry_after

    @property
    def says_when(self) -> bool:
        """The message (the service's own words) already tells when to retry."""
        return RETRY_WHEN.search(self.message) is not None


class ServiceUnavailable(BatchToolError):
    """The service answered with a server error: retry later."""


class ConnectionFailed(BatchToolError):
    """The service could not be reached; `endpoint_setting` is the variable its address came from, if any."""

    def __init__(self, message: str, *, endpoint_setting: str | None = None) -> None:
        super().__init__(message)
        self.endpoint_setting = endpoint_setting


class UnknownDeployment(InvalidInput):
    """A deployment name the backend does not have; `known` lists the ones it has."""

    def __init__(self, deployment: str, known: list[str], *, message: str | None = None) -> None:
        names = ", ".join(known) or "none"
        super().__init__(message or f"There is no deployment named {deployment!r}; the deployments are {names}.")
        self.deployment = deployment
        self.known = known


class NotAFileId(InvalidInput):
    """What was given as an uploaded file's id is a local path (`kind="path"`) or a batch id (`kind="batch"`)."""

    def __init__(self, message: str, *, value: str, kind: Literal["path", "batch"]) -> None:
        super().__init__(message)
        self.value = value
        self.kind = kind


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


def with_advice(exc: BatchToolError, advice: str | None) -> str:
    """The error's message, then one piece of advice from an edge (or none: nothing to add)."""
    text = str(exc).strip()
    if not advice:
        return text
    return f"{text} {advice}" if text.endswith((".", "!", "?")) else f"{text}. {advice}"
