"""What to do next after an error, in the words of the command line (commands and flags), said once.

The tools add their own advice in tool words (`tools/deps.py`); the core's messages say only what
happened. Kept apart from `cli_support` so that `validate` can report an error without importing the
service (its start-up is measured: bench/validate.py).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import Any

import orjson

from aoai_batch.errors import (
    AuthenticationFailed,
    BadPriceFile,
    BatchToolError,
    ConnectionFailed,
    CostAboveLimit,
    FileInTheWay,
    InvalidBatchFile,
    NotAFileId,
    NotConfigured,
    NotFound,
    NotReady,
    RateLimited,
    ServiceUnavailable,
    SignInFailed,
    with_advice,
)

PROG = "aoai-batch-mcp"


def error_line(exc: BatchToolError) -> str:
    """`error: ` and the message, then what to do next in the words of this command line (said once)."""
    return f"error: {_advised(exc)}"


def error_json(exc: BatchToolError) -> str:
    """`{"error": {"kind": ..., "message": ...}}` (and the service's `code`, `retry_after`): for `--json`."""
    return orjson.dumps({"error": {**exc.details(), "message": _advised(exc)}}, option=orjson.OPT_INDENT_2).decode()


def report_error(exc: BatchToolError, *, as_json: bool = False) -> None:
    """The error line on stderr; with `--json`, the error as JSON on stdout too, where the script reads."""
    print(error_line(exc), file=sys.stderr)
    if as_json:
        print(error_json(exc))


def _advised(exc: BatchToolError) -> str:
    step = next((give(exc) for leaf, give in _ADVICE if isinstance(exc, leaf)), None)
    return with_advice(exc, step)


def _sign_in(exc: SignInFailed) -> str:
    return "Run `az login` (or use a managed identity), or set AZURE_OPENAI_API_KEY to use a key."


def _refused(exc: AuthenticationFailed) -> str:
    if exc.auth == "entra":
        role = "'Cognitive Services OpenAI User'"
        return f"Give your identity the {role} role on the resource, or set AZURE_OPENAI_API_KEY."
    return f"Check {exc.key_setting}."


def _rate_limited(exc: RateLimited) -> str | None:
    if exc.says_when:
        return None  # the service's own message already says when
    if exc.retry_after is not None:
        return f"Retry after {exc.retry_after:.0f} s."
    return "Wait a minute and run the command again."


def _not_found(exc: NotFound) -> str | None:
    if exc.missing == "batch":
        return f"`{PROG} list` shows the batches."
    if exc.missing == "file":
        return f"`{PROG} files` shows the uploaded files; upload a local file first (`{PROG} upload FILE`)."
    return None


def _not_ready(exc: NotReady) -> str | None:
    if exc.batch_id is None:
        return None
    return f"`{PROG} status {exc.batch_id} --follow` waits until it has finished."


def _not_a_file_id(exc: NotAFileId) -> str:
    if exc.given == "path":
        return f"Upload it first (`{PROG} upload {shlex.quote(exc.value)}`), then create with the file id it prints."
    return f"`{PROG} status {shlex.quote(exc.value)}` shows it; `{PROG} files` lists the uploaded files."


def _over_budget(exc: CostAboveLimit) -> str:
    if exc.estimate is None:
        return "Leave out --max-cost to start it anyway."
    return (
        "Raise --max-cost, or make the job smaller (fewer requests, a lower max_tokens) "
        "and upload it (or start the run) again."
    )


def _unreachable(exc: ConnectionFailed) -> str | None:
    if exc.endpoint_setting is None:
        return None  # not an address anyone set (the embedded emulator, a server shutting down)
    return f"Check {exc.endpoint_setting} and the network, then run the command again."


# The first row whose type matches gives the one piece of advice (subclasses before their bases).
_ADVICE: list[tuple[type[Any], Callable[[Any], str | None]]] = [
    (FileInTheWay, lambda exc: "Add --overwrite to replace existing files, or choose another name."),
    (InvalidBatchFile, lambda exc: f"`{PROG} validate {shlex.quote(str(exc.path))}` lists every issue."),
    (BadPriceFile, lambda exc: f"Fix that file, or unset {exc.setting}, and run the command again."),
    (NotConfigured, lambda exc: f"Set {exc.setting} and run the command again."),
    (CostAboveLimit, _over_budget),
    (NotAFileId, _not_a_file_id),
    (NotFound, _not_found),
    (NotReady, _not_ready),
    (SignInFailed, _sign_in),
    (AuthenticationFailed, _refused),
    (RateLimited, _rate_limited),
    (ServiceUnavailable, lambda exc: "Run the command again in a minute."),
    (ConnectionFailed, _unreachable),
]
