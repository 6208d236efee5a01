"""Checking a batch file against Azure's rules in one streaming pass (pure: it only reads the file given).

Memory stays bounded whatever the file: lines are read one at a time (a line longer than
`jsonl.MAX_LINE_BYTES` is skipped, not kept) and uniqueness keeps one hash per custom_id, for at most
`max_requests` ids.

The pass itself needs no pydantic: it produces `Findings`, and only `validate_file` turns them into the
`ValidationReport` model. `aoai-batch-mcp validate` prints the findings as they are, so its process never
imports pydantic (a third of its run on a 150 MB file, bench/validate.py; tests/server/test_cli_imports.py).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from aoai_batch.endpoints import bare_endpoint
from aoai_batch.jsonl import BOM, MAX_LINE_BYTES, open_for_reading, skip_rest_of_line
from aoai_batch.text import truncate
from aoai_batch.tokens import APPROXIMATE, OutputBound, TokenEstimator, get_counter

if TYPE_CHECKING:
    from aoai_batch.models import IssueCode, ValidationReport

MAX_LISTED_ISSUES = 50
# Above this size only a sample of the requests is tokenized (see TokenEstimator); below, all of them.
EXACT_TOKENS_BYTES = 2_000_000
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
    exact_tokens: bool = True,
    endpoint: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ValidationReport:
    """Check `path` as an Azure OpenAI batch input file; every problem becomes an issue, never an exception.

    `deployments`, when given, are the deployment names that exist: a `body.model` outside them is
    `model_not_found` (reported once per name). `endpoint`, when given, is the batch's endpoint: a file
    whose url names another is `url_mismatch` (reported at its first line; `/v1/x` and `/x` are the
    same). Limits are inclusive. `exact_tokens=False` estimates tokens from characters, without loading
    the tokenizer (its tables are most of the memory a validation takes; `tokens_exact` is then False).
    Raises InvalidInput only when the file cannot be opened.
    """
    findings = check_file(
        path,
        max_requests=max_requests,
        max_bytes=max_bytes,
        deployments=deployments,
        count_tokens=count_tokens,
        exact_tokens=exact_tokens,
        endpoint=endpoint,
        max_line_bytes=max_line_bytes,
    )
    return findings.to_report()


def check_file(
    path: Path,
    *,
    max_requests: int,
    max_bytes: int,
    deployments: Collection[str] | None = None,
    count_tokens: bool = True,
    exact_tokens: bool = True,
    endpoint: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Findings:
    """`validate_file`'s pass, returning the plain `Findings` (no pydantic involved)."""
    path = Path(path)
    with open_for_reading(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        checker = Checker(
            max_requests,
            deployments,
            count_tokens,
            sample_every=1 + size // EXACT_TOKENS_BYTES,
            exact_tokens=exact_tokens,
        )
        checker.expected_endpoint = bare_endpoint(endpoint) if endpoint is not None else None
        total_bytes = checker.run(handle, max_line_bytes)
    return checker.findings(path, total_bytes, max_bytes)


@dataclasses.dataclass(slots=True)
class Issue:
    """One problem found: the fields of `models.ValidationIssue`."""

    code: IssueCode
    line: int | None
    message: str


@dataclasses.dataclass
class Findings:
    """What one pass found: the fields of `models.ValidationReport`, in its order (a test keeps them equal)."""

    ok: bool
    path: str
    requests: int
    bytes: int
    deployment: str | None
    deployment_checked: bool
    url: str | None
    issues: list[Issue]
    issue_counts: dict[str, int]
    estimated_input_tokens: int
    tokens_exact: bool
    max_output_tokens: int | None
    estimated_cost: None = None  # priced later, by whoever knows the deployment's model (`aoai_batch.cost`)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the same as `to_report().model_dump()`)."""
        return dataclasses.asdict(self)

    def to_report(self) -> ValidationReport:
        # Imported here, not at the top: the models bring pydantic, which `aoai-batch-mcp validate` does
        # without (see the module docstring).
        from aoai_batch.models import ValidationReport

        return ValidationReport.model_validate(self.as_dict())


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return truncate(text, SHOWN_VALUE_CHARS)


class Checker:
    """The state of one validation pass; `run` checks a file, `check_object` one request already in memory.

    The loop is written for speed (the benchmark holds it to 1.4x a bare `orjson.loads` loop, whole
    process): the common case, a well-formed line like the ones before it, costs a few dict lookups;
    anything unusual goes to a slower helper.
    """

    def __init__(
        self,
        max_requests: int,
        deployments: Collection[str] | None,
        count_tokens: bool,
        sample_every: int,
        exact_tokens: bool = True,
    ) -> None:
        self.max_requests = max_requests
        self.deployments = frozenset(deployments) if deployments is not None else None
        self.tokens: TokenEstimator | None = None
        self.output_bound = OutputBound()
        if count_tokens:
            counter = get_counter() if exact_tokens else APPROXIMATE
            self.tokens = TokenEstimator(sample_every=sample_every, counter=counter)
        self.requests = 0
        self.model: str | None = None
        self.url: str | None = None
        self.expected_endpoint: str | None = None
        self.endpoint: str | None = None
        self.issues: list[Issue] = []
        self.pinned: list[Issue] = []
        self.counts: Counter[str] = Counter()
        # hash(custom_id) of every id seen: a hash, not the id, keeps memory small (a false duplicate
        # needs a 64-bit collision); a set, not a dict to the first line, keeps the pass fast.
        self.seen_ids: set[int] = set()
        self.checked_models: set[str] = set()

    def add(self, code: IssueCode, line: int | None, message: str) -> None:
        self.counts[code] += 1
        if len(self.issues) < MAX_LISTED_ISSUES:
            self.issues.append(Issue(code, line, message))

    def add_whole_file(self, code: IssueCode, line: int | None, message: str) -> None:
        """An issue about the whole file: listed first, so fifty line issues never hide it."""
        self.counts[code] += 1
        self.pinned.append(Issue(code, line, message))

    def run(self, handle: IO[bytes], max_line_bytes: int) -> int:
        """Check every line of `handle`; returns the bytes read.

        A plain chat request that repeats the file's url and model with a new custom_id is accepted
        inline, with no call (`aoai-batch-mcp validate` is held to 1.4x a bare read-and-parse process,
        bench/validate.py). Any other line goes to `check_request`, which decides alone: the inline path
        only ever accepts what `check_request` would accept without an issue. The request count is a
        local for the same reason, handed to `self.requests` before any helper runs.
        """
        loads = orjson.loads
        check = self.check_request
        too_many = self.max_requests + 1
        seen = self.seen_ids
        remember = seen.add
        roles = MESSAGE_ROLES
        tokens = self.tokens
        bound = self.output_bound
        url = model = None  # the file's chat url and model, once known
        total = 0
        requests = self.requests
        body: Any
        custom_id: Any
        lines = iter(functools.partial(handle.readline, max_line_bytes), b"")
        for number, data in enumerate(lines, start=1):
            total += len(data)
            if len(data) == max_line_bytes and not data.endswith(b"\n"):
                total += skip_rest_of_line(handle, max_line_bytes)
                self.requests = requests
                self.too_long(number, data)
                requests = self.requests
                continue
            if number == 1 and data.startswith(BOM):
                self.add("bom", 1, "The file starts with a UTF-8 byte order mark; save it as UTF-8 without BOM.")
                data = data[3:]
            try:
                obj = loads(data)
            except orjson.JSONDecodeError as exc:
                self.requests = requests
                self.not_json(number, data, exc)
                requests = self.requests
                continue
            requests += 1
            if requests == too_many:
                self.too_many(number)
            plain = False
            if url is not None:
                try:  # a missing key, or a value that is not an object where one is indexed: not plain
                    body = obj["body"]
                    custom_id = obj["custom_id"]
                    messages = body["messages"]
                    plain = (
                        obj["url"] == url
                        and obj["method"] == "POST"
                        and body["model"] == model
                        and type(custom_id) is str
                        and custom_id != ""
                        and type(messages) is list
                        and len(messages) > 0
                    )
                    if plain:
                        for message in messages:
                            if message["role"] not in roles or type(message["content"]) is not str:
                                plain = False
                                break
                except (KeyError, TypeError):
                    plain = False
            if plain:
                key = hash(custom_id)
                if key not in seen:
                    if requests < too_many:
                        remember(key)
                    if tokens is not None:
                        tokens.add("/chat/completions", body)
                        bound.add(body)
                    continue
            self.requests = requests
            check(number, obj)
            if url is None and self.endpoint == "/chat/completions" and self.model is not None:
                url, model = self.url, self.model
        self.requests = requests
        return total

    def check_object(self, number: int, obj: object) -> None:
        """Check one request that is already parsed (the builder checks what it writes this way)."""
        self.count_request(number)
        self.check_request(number, obj)

    def count_request(self, number: int) -> None:
        self.requests += 1
        if self.requests == self.max_requests + 1:
            self.too_many(number)

    def too_many(self, number: int) -> None:
        self.add_whole_file("too_many_tasks", number, f"More than {self.max_requests} requests; split the file here.")

    def too_long(self, number: int, data: bytes) -> None:
        self.count_request(number)
        self.add("invalid_request", number, f"The line is over {len(data)} bytes long, too long to be one request.")

    def not_json(self, number: int, data: bytes, exc: orjson.JSONDecodeError) -> None:
        if data.strip():
            self.count_request(number)
            self.add("invalid_json_line", number, f"The line is not valid JSON ({exc}).")
        elif data:
            self.add("blank_line", number, "Blank line; remove it (every line must be one request).")

    def check_request(self, number: int, obj: Any) -> None:
        if type(obj) is not dict:
            self.add("invalid_request", number, f"The line is JSON but not an object ({type(obj).__name__}).")
            return
        custom_id = obj.get("custom_id")
        if type(custom_id) is str and custom_id:
            key = hash(custom_id)
            if key in self.seen_ids:
                self.add(
                    "duplicate_custom_id", number, f"custom_id {_shown(custom_id)} is used on an earlier line too."
                )
            elif self.requests <= self.max_requests:  # past the limit ids are no longer kept: bounded memory
                self.seen_ids.add(key)
        else:
            self.check_custom_id(number, custom_id)
        method = obj.get("method")
        if method != "POST":
            self.check_method(number, method)
        url = obj.get("url")
        endpoint = self.endpoint if url == self.url and url is not None else self.check_url(number, url)
        body = obj.get("body")
        if type(body) is not dict:
            self.add("invalid_request", number, "body is missing or not an object.")
            return
        model = body.get("model")
        if model != self.model or model is None:
            self.check_model(number, model)
        if endpoint is None:
            return
        if endpoint == "/chat/completions":
            problem = _messages_problem(body.get("messages"))
        else:
            problem = _input_problem(BODY_FIELD[endpoint], body)
        if problem is not None:
            self.add("invalid_request", number, problem)
        elif self.tokens is not None:
            self.tokens.add(endpoint, body)
            self.output_bound.add(body)

    def check_custom_id(self, number: int, custom_id: object) -> None:
        if custom_id is None or custom_id == "":
            self.add("missing_custom_id", number, "custom_id is missing; give every request a unique custom_id.")
        else:
            self.add("invalid_request", number, f"custom_id must be a string, not {type(custom_id).__name__}.")

    def check_method(self, number: int, method: object) -> None:
        if type(method) is str:
            self.add("invalid_method", number, f"method is {_shown(method)}; batch requests use POST.")
        else:
            self.add("invalid_request", number, 'method is missing or not a string; use "POST".')

    def check_url(self, number: int, url: object) -> str | None:
        """The endpoint the line's url names (without a `/v1` prefix), or None if it names none."""
        if type(url) is not str:
            self.add("invalid_request", number, 'url is missing or not a string; use e.g. "/chat/completions".')
            return None
        endpoint = bare_endpoint(url)
        if endpoint not in BODY_FIELD:
            supported = ", ".join(BODY_FIELD)
            self.add("url_mismatch", number, f"url {_shown(url)} is not a batch endpoint; use one of {supported}.")
            return None
        if self.url is None:
            self.url, self.endpoint = url, endpoint
            if self.expected_endpoint is not None and endpoint != self.expected_endpoint:
                self.add(
                    "url_mismatch",
                    number,
                    f"url {_shown(url)} does not match the batch's endpoint {self.expected_endpoint}.",
                )
        else:
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
        if self.deployments is not None and model not in self.deployments and model not in self.checked_models:
            self.checked_models.add(model)
            known = ", ".join(sorted(self.deployments)) or "none"
            self.add("model_not_found", number, f"No deployment named {_shown(model)} (known: {_shown(known)}).")

    def report(self, path: Path, total_bytes: int, max_bytes: int) -> ValidationReport:
        return self.findings(path, total_bytes, max_bytes).to_report()

    def findings(self, path: Path, total_bytes: int, max_bytes: int) -> Findings:
        if total_bytes > max_bytes:
            self.add_whole_file(
                "file_too_large", None, f"The file is {total_bytes} bytes; the limit is {max_bytes}. Split it."
            )
        if self.requests == 0:
            self.add_whole_file("empty_file", None, "The file has no requests.")
        tokens = self.tokens
        return Findings(
            ok=not self.counts,
            path=str(path),
            requests=self.requests,
            bytes=total_bytes,
            deployment=self.model,
            deployment_checked=self.deployments is not None and self.model is not None,
            url=self.url,
            issues=(self.pinned + self.issues)[:MAX_LISTED_ISSUES],
            issue_counts=dict(self.counts),
            estimated_input_tokens=tokens.total if tokens else 0,
            tokens_exact=tokens.exact if tokens else False,
            max_output_tokens=self.output_bound.total if tokens and self.requests else None,
        )


def _input_problem(name: str, body: dict[str, Any]) -> str | None:
    value = body.get(name)
    if type(value) is str or (type(value) is list and value):
        return None
    return f"body.{name} is missing, empty, or not a string or list."


def _messages_problem(messages: object) -> str | None:
    """What is wrong with `body.messages`, or None (a fast pass first; the slow one names the problem)."""
    if type(messages) is not list or not messages:
        return "body.messages is missing, empty, or not a list; give at least one message."
    roles = MESSAGE_ROLES
    try:
        for message in messages:
            if message.get("role") not in roles or type(message.get("content")) is not str:
                break
        else:
            return None
    except (AttributeError, TypeError):  # a message that is not an object, or a role that is not hashable
        pass
    for index, message in enumerate(messages):
        problem = _message_problem(message)
        if problem is not None:
            return f"body.messages[{index}]{problem}"
    return None


def _message_problem(message: object) -> str | None:
    if type(message) is not dict:
        return " is not an object."
    role = message.get("role")
    if type(role) is not str or role not in MESSAGE_ROLES:
        return f".role is {_shown(role)}; use system, user, assistant, tool or developer."
    content = message.get("content")
    if content is None:
        return " has no content." if role != "assistant" else None
    if type(content) is list:
        if all(type(part) is dict and type(part.get("type")) is str for part in content):
            return None
        return ".content parts must be objects with a type."
    if type(content) is not str:
        return ".content must be a string or a list of parts."
    return None
