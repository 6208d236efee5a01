"""The error tree. Each leaf matches what the caller does next: fix input, authenticate, wait, or give up.

Errors carry what happened, and the facts an edge needs to say what to do next (the setting that is
missing, the provider and auth mode that were refused, when to retry, what was not found). The advice
itself is added once, at each edge, in its own words: the CLI (`server/cli_errors.py`) names commands
and flags, the tools (`tools/deps.py`) name tools and parameters. Messages here name neither.

Every class declares its `kind` (`ErrorKind`): the next step in one word, for programs. It reaches each
edge unchanged (`details()`, under `ERROR_KEY`: in a tool result's `_meta`, a resource error's data, and
`--json` output), so a client decides what to do without reading the message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Required, TypedDict

if TYPE_CHECKING:  # models bring pydantic, which `validate`'s process does without (bench/validate.py)
    from aoai_batch.models import Backend

ErrorKind = Literal[
    "invalid_input",  # fix the input (a path, a parameter, a file) and try again
    "conflict",  # a file is in the way: replace it only if asked to, or choose another name
    "not_configured",  # a setting the backend needs is missing: whoever runs the server sets it
    "not_found",  # the batch or file does not exist here: look up the right id
    "not_ready",  # not yet possible (a batch still running): wait, then try again
    "rejected",  # the service refused the request (`code` says why): change it, or give up
    "auth",  # the credentials were refused or could not be had: fix them
    "rate_limited",  # quota or rate limit: retry after `retry_after` seconds, or later
    "unavailable",  # the service (or the registry) cannot be used now: retry later
    "no_space",  # the disk is full: free space, or write somewhere else
    "over_budget",  # the job would cost more than the limit given: raise the limit, or make the job smaller
]
ERROR_KEY = "io.github.aoai-batch-mcp/error"
"""The one name under which the edges hand `details()` to programs (MCP `_meta` keys are namespaced)."""


class ErrorDetails(TypedDict, total=False):
    """An error for programs: `kind` always, the service's facts when it gave them."""

    kind: Required[ErrorKind]
    code: str  # the service's error code, e.g. Azure's `token_limit_exceeded`
    retry_after: float  # seconds the service asked to wait before retrying


AuthInUse = Literal["key", "entra"]  # how requests were signed (settings.AuthMode adds "auto")
Missing = Literal["batch", "file"]
KEY_SETTINGS: dict[Backend, str] = {
    "azure": "AZURE_OPENAI_API_KEY",
    "emulator": "AZURE_OPENAI_API_KEY",
    "openai": "OPENAI_API_KEY",
}
# How a service's own message tells when to retry ("Please retry after 30 seconds", "Retry after 1 seconds").
RETRY_WHEN = re.compile(r"\bretry (after|in) \d", re.IGNORECASE)


class BatchToolError(Exception):
    """Base of every expected failure; `str()` says what happened, `kind` what to do next. Never raised itself."""

    kind: ClassVar[ErrorKind]

    def __init_subclass__(cls, *, kind: ErrorKind | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
        elif not hasattr(cls, "kind"):  # a new branch of the tree must say what its callers do next
            raise TypeError(f"{cls.__name__} must declare its kind: class {cls.__name__}(..., kind=...)")

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def details(self) -> ErrorDetails:
        """What a program needs to choose its next step: the kind, and the service's facts when known."""
        return {"kind": self.kind}

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message


class InvalidInput(BatchToolError, kind="invalid_input"):
    """Local input is wrong (a path, a parameter, a file): fix it and try again."""


class PathNotAllowed(InvalidInput):
    """A path resolves outside the workspace folders."""


class FileInTheWay(InvalidInput, kind="conflict"):
    """A file to be written already exists, and replacing it was not asked for."""

    def __init__(self, path: Path | str, message: str | None = None) -> None:
        super().__init__(message or f"{path} already exists.")
        self.path = Path(path)


class InvalidBatchFile(InvalidInput):
    """A batch file has issues (so it was not uploaded); the validation report lists them all."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class NotConfigured(InvalidInput, kind="not_configured"):
    """A setting the chosen backend needs is not set; `setting` is its environment variable."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class BadPriceFile(NotConfigured):
    """The price file `AOAI_BATCH_PRICES` names cannot be read, or an entry of it is wrong; `path` is the file."""

    def __init__(self, message: str, *, path: Path | str) -> None:
        super().__init__(message, setting="AOAI_BATCH_PRICES")
        self.path = Path(path)


class CostAboveLimit(BatchToolError, kind="over_budget"):
    """The job's estimated cost is above the `max_cost` given (or cannot be estimated); nothing was started."""

    def __init__(self, message: str, *, max_cost: float, estimate: float | None) -> None:
        super().__init__(message)
        self.max_cost = max_cost
        self.estimate = estimate


class NotFound(BatchToolError, kind="not_found"):
    """The batch or file does not exist (or not on this resource); `missing` says which, when known."""

    def __init__(self, message: str, *, missing: Missing | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.missing = missing


class NotReady(BatchToolError, kind="not_ready"):
    """Not in a state that allows this yet; `batch_id` is set when it is a batch still running."""

    def __init__(self, message: str, *, batch_id: str | None = None) -> None:
        super().__init__(message)
        self.batch_id = batch_id


class InvalidRequest(BatchToolError, kind="rejected"):
    """The service rejected the request; `code` is Azure's error code when it sent one."""

    def __init__(self, message: str, *, code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.code = code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (code {self.code})" if self.code and self.code not in text else text

    def details(self) -> ErrorDetails:
        details = super().details()
        if self.code:
            details["code"] = self.code
        return details


class AuthenticationFailed(BatchToolError, kind="auth"):
    """The service refused the credentials of `backend`, sent by `auth` (a key, or an Entra ID token)."""

    def __init__(
        self, message: str, *, backend: Backend = "azure", auth: AuthInUse = "key", request_id: str | None = None
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.backend: Backend = backend
        self.auth: AuthInUse = auth

    @property
    def key_setting(self) -> str:
        """The environment variable the key of this backend comes from."""
        return KEY_SETTINGS[self.backend]


class SignInFailed(AuthenticationFailed):
    """No Entra ID token could be had (no `az login`, no managed identity, no service principal)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, backend="azure", auth="entra")


class RateLimited(BatchToolError, kind="rate_limited"):
    """Quota or rate limit reached; retry after `retry_after` seconds when known."""

    def __init__(self, message: str, *, retry_after: float | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.retry_after = retry_after

    @property
    def says_when(self) -> bool:
        """The message (the service's own words) already tells when to retry."""
        return RETRY_WHEN.search(self.message) is not None

    def details(self) -> ErrorDetails:
        details = super().details()
        if self.retry_after is not None:
            details["retry_after"] = self.retry_after
        return details


class ServiceUnavailable(BatchToolError, kind="unavailable"):
    """The service answered with a server error: retry later."""


class ConnectionFailed(BatchToolError, kind="unavailable"):
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
    """What was given as an uploaded file's id is a local path (`given="path"`) or a batch id (`given="batch"`)."""

    def __init__(self, message: str, *, value: str, given: Literal["path", "batch"]) -> None:
        super().__init__(message)
        self.value = value
        self.given: Literal["path", "batch"] = given


class NotWritable(InvalidInput):
    """Files cannot be written into `folder` (permissions, a read-only disk, not a folder): choose another."""

    def __init__(self, message: str, *, folder: str) -> None:
        super().__init__(message)
        self.folder = folder


class NoSpace(BatchToolError, kind="no_space"):
    """The disk (or quota) holding `folder` is full: free some space, or write somewhere else."""

    def __init__(self, message: str, *, folder: str) -> None:
        super().__init__(message)
        self.folder = folder


class RegistryLocked(BatchToolError, kind="unavailable"):
    """Another process has held the job registry's lock for too long: wait for it, or stop it, and try again."""


def with_advice(exc: BatchToolError, advice: str | None) -> str:
    """The error's message, then one piece of advice from an edge (or none: nothing to add)."""
    text = str(exc).strip()
    if not advice:
        return text
    return f"{text} {advice}" if text.endswith((".", "!", "?")) else f"{text}. {advice}"
