"""Checking a batch file against Azure's rules in one streaming pass (pure: it only reads the file given).

Memory stays bounded whatever the file: lines are read one at a time (a line longer than
`jsonl.MAX_LINE_BYTES` is skipped, not kept) and uniqueness keeps one hash per custom_id, for at most
`max_requests` ids.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson

from aoai_batch.jsonl import BOM, MAX_LINE_BYTES, iter_lines, open_for_reading
from aoai_batch.models import IssueCode, ValidationIssue, ValidationReport
from aoai_batch.tokens import TokenEstimator

MAX_LISTED_ISSUES = 50
# Above this size only a sample of the requests is tokenized (see TokenEstimator); below, all of them.
EXACT_TOKENS_BYTES = 8_000_000
SHOWN_VALUE_CHARS = 80
BODY_FIELD: dict[str, str] = {
    "/chat/completions": "messages",
    "/responses": "input",
    "/embeddings": "input",
    "/completions": "prompt",
}
MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def validate_file(
    path: Path,
    *,
    max_requests: int,
    max_bytes: int,
    deployments: Collection[str] | None = None,
    count_tokens: bool = True,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ValidationReport:
    """Check `path` as an Azure OpenAI batch input file; every problem becomes an issue, never an exception.

    `deployments`, when given, are the deployment names that exist: a `body.model` outside them is
    `model_not_found` (reported once per name). Limits are inclusive. Raises InvalidInput only when the
    file cannot be opened.
    """
    path = Path(path)
    with open_for_reading(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        checker = _Checker(max_requests, deployments, count_tokens, sample_every=1 + size // EXACT_TOKENS_BYTES)
        total_bytes = 0
        for line in iter_lines(handle, max_line_bytes):
            total_bytes += line.length
            checker.check_line(line.number, line.data, line.length)
    return checker.report(path, total_bytes, max_bytes)


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 1] + "…"


class _Checker:
    """The state of one validation pass."""

    def __init__(
        self, max_requests: int, deployments: Collection[str] | None, count_tokens: bool, sample_every: int
    ) -> None:
        self.max_requests = max_requests
        self.deployments = frozenset(deployments) if deployments is not None else None
        self.tokens = TokenEstimator(sample_every=sample_every) if count_tokens else None
        self.requests = 0
        self.model: str | None = None
        self.url: str | None = None
        self.issues: list[ValidationIssue] = []
        self.counts: Counter[str] = Counter()
        # hash(custom_id) -> line of first use; a hash, not the id, to keep memory small (a false
        # duplicate needs a 64-bit collision).
        self.seen_ids: dict[int, int] = {}
        self.missing_models: set[str] = set()

    def add(self, code: IssueCode, line: int | None, message: str) -> None:
        self.counts[code] += 1
        if len(self.issues) < MAX_LISTED_ISSUES:
            self.issues.append(ValidationIssue(code=code, line=line, message=message))

    def check_line(self, number: int, data: bytes | None, length: int) -> None:
        if data is None:
            self.requests += 1
            self.add("invalid_request", number, f"The line is {length} bytes long, too long to be one request.")
            return
        if number == 1 and data.startswith(BOM):
            self.add("bom", 1, "The file starts with a UTF-8 byte order mark; save it as UTF-8 without BOM.")
            data = data[3:]
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if data.strip():
                self.requests += 1
                self.add("invalid_json_line", number, f"The line is not valid JSON ({exc}).")
            elif data:
                self.add("blank_line", number, "Blank line; remove it (every line must be one request).")
            return
        self.requests += 1
        if self.requests == self.max_requests + 1:
            self.add(
                "too_many_tasks", number, f"More than {self.max_requests} requests; split the file (from this line)."
            )
        self.check_request(number, obj)

    def check_request(self, number: int, obj: Any) -> None:
        if type(obj) is not dict:
            self.add("invalid_request", number, f"The line is JSON but not an object ({type(obj).__name__}).")
            return
        self.check_custom_id(number, obj.get("custom_id"))
        method = obj.get("method")
        if method != "POST":
            if type(method) is str:
                self.add("invalid_method", number, f"method is {_shown(method)}; batch requests use POST.")
            else:
                self.add("invalid_request", number, 'method is missing or not a string; use "POST".')
        endpoint = self.check_url(number, obj.get("url"))
        body = obj.get("body")
        if type(body) is not dict:
            self.add("invalid_request", number, "body is missing or not an object.")
            return
        self.check_model(number, body.get("model"))
        if endpoint is not None and self.check_body(number, endpoint, body) and self.tokens is not None:
            self.tokens.add(endpoint, body)

    def check_custom_id(self, number: int, custom_id: object) -> None:
        if type(custom_id) is str and custom_id:
            key = hash(custom_id)
            first = self.seen_ids.get(key)
            if first is not None:
                self.add(
                    "duplicate_custom_id", number, f"custom_id {_shown(custom_id)} is already used on line {first}."
                )
            elif len(self.seen_ids) < self.max_requests:
                self.seen_ids[key] = number
        elif custom_id is None or custom_id == "":
            self.add("missing_custom_id", number, "custom_id is missing; give every request a unique custom_id.")
        else:
            self.add("invalid_request", number, f"custom_id must be a string, not {type(custom_id).__name__}.")

    def check_url(self, number: int, url: object) -> str | None:
        """The endpoint the line's url names (without a `/v1` prefix), or None if it names none."""
        if type(url) is not str:
            self.add("invalid_request", number, 'url is missing or not a string; use e.g. "/chat/completions".')
            return None
        endpoint = url[3:] if url.startswith("/v1/") else url
        if endpoint not in BODY_FIELD:
            supported = ", ".join(BODY_FIELD)
            self.add("url_mismatch", number, f"url {_shown(url)} is not a batch endpoint; use one of {supported}.")
            return None
        if self.url is None:
            self.url = url
        elif url != self.url:
            self.add("url_mismatch", number, f"url {_shown(url)} differs from the file's {self.url}; use one url.")
        return endpoint

    def check_model(self, number: int, model: object) -> None:
        if type(model) is not str or not model:
            self.add("invalid_request", number, "body.model is missing; set it to the deployment name.")
            return
        if self.model is None:
            self.model = model
        elif model != self.model:
            self.add(
                "model_mismatch", number, f"body.model {_shown(model)} differs from the file's {_shown(self.model)}."
            )
        if self.deployments is not None and model not in self.deployments and model not in self.missing_models:
            self.missing_models.add(model)
            known = ", ".join(sorted(self.deployments)) or "none"
            self.add("model_not_found", number, f"No deployment named {_shown(model)} (known: {_shown(known)}).")

    def check_body(self, number: int, endpoint: str, body: dict[str, Any]) -> bool:
        """Whether the body has its endpoint's main field in a usable shape (issues added if not)."""
        name = BODY_FIELD[endpoint]
        value = body.get(name)
        if endpoint == "/chat/completions":
            problem = _messages_problem(value)
        elif type(value) is str or (type(value) is list and value):
            problem = None
        else:
            problem = f"body.{name} is missing, empty, or not a string or list."
        if problem is not None:
            self.add("invalid_request", number, problem)
            return False
        return True

    def report(self, path: Path, total_bytes: int, max_bytes: int) -> ValidationReport:
        if total_bytes > max_bytes:
            self.add("file_too_large", None, f"The file is {total_bytes} bytes; the limit is {max_bytes}. Split it.")
        if self.requests == 0 and not self.counts:
            self.add("empty_file", None, "The file has no requests.")
        elif self.requests == 0:
            self.add("empty_file", None, "The file has no requests, only blank lines.")
        tokens = self.tokens
        return ValidationReport(
            ok=not self.counts,
            path=str(path),
            requests=self.requests,
            bytes=total_bytes,
            deployment=self.model,
            url=self.url,
            issues=self.issues,
            issue_counts=dict(self.counts),
            estimated_input_tokens=tokens.total if tokens else 0,
            tokens_exact=tokens.exact if tokens else False,
        )


def _messages_problem(messages: object) -> str | None:
    if type(messages) is not list or not messages:
        return "body.messages is missing, empty, or not a list; give at least one message."
    for index, message in enumerate(messages):
        if type(message) is not dict:
            return f"body.messages[{index}] is not an object."
        role = message.get("role")
        if type(role) is not str or role not in MESSAGE_ROLES:
            return f"body.messages[{index}].role is {_shown(role)}; use system, user, assistant, tool or developer."
        content = message.get("content")
        if content is None:
            if role != "assistant":
                return f"body.messages[{index}] has no content."
        elif type(content) is list:
            if not all(type(part) is dict and type(part.get("type")) is str for part in content):
                return f"body.messages[{index}].content parts must be objects with a type."
        elif type(content) is not str:
            return f"body.messages[{index}].content must be a string or a list of parts."
    return None
