"""Building batch files from prompts, request objects or rows of a CSV / JSONL / JSON file.

Every line is checked as it is written (the validator's own rules), the output is split by request count
and bytes when a limit would be passed, and files appear only when all of them are complete and valid.
"""

from __future__ import annotations

import base64
import contextlib
import mimetypes
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from aoai_batch.errors import InvalidInput, UnknownDeployment
from aoai_batch.jsonl import open_for_reading
from aoai_batch.models import BuildResult, BuiltFile, ValidationReport
from aoai_batch.results.source_rows import forget_build_links, save_build_links
from aoai_batch.sources import iter_rows
from aoai_batch.splitwriter import SplitWriter
from aoai_batch.templates import Template, cell_text
from aoai_batch.validation import EXACT_TOKENS_BYTES, Checker

BUILDABLE_ENDPOINTS = ("/chat/completions", "/responses")
RESERVED_BODY_FIELDS = frozenset({"model", "messages", "input"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
REMOTE_IMAGE_PREFIXES = ("https://", "http://", "data:image/")
SHOWN_ISSUES = 5

ImageResolver = Callable[[str], Path]


def build_batch_file(
    *,
    deployment: str,
    output_path: Path,
    max_requests: int,
    max_bytes: int,
    prompts: Sequence[str] | None = None,
    requests: Sequence[Mapping[str, Any]] | None = None,
    source_path: Path | None = None,
    template: str | None = None,
    system_prompt: str | None = None,
    id_field: str | None = None,
    image_field: str | None = None,
    endpoint: str = "/chat/completions",
    body: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    resolve_image: ImageResolver | None = None,
    deployments: Iterable[str] | None = None,
    sources_home: Path | None = None,
) -> BuildResult:
    """Write the batch file(s) for exactly one of `prompts`, `requests` or `source_path`.

    A template fills `{column}` from each source row, request object or prompt (`{prompt}`); without one,
    a row's `prompt` column, or its only column, is the prompt.

    Local images (in `image_field`) are read through `resolve_image` (default: relative to the source
    file's folder, or the current folder), which may refuse a path by raising InvalidInput.
    `deployments`, when given, are the names that exist: another `deployment` is UnknownDeployment.
    With `sources_home`, a build from `source_path` links each file written to its rows there
    (`results.source_rows`), so fetching its results brings the rows' columns back beside the answers.
    Raises InvalidInput, with nothing written, for any bad input.
    """
    if sum(given is not None for given in (prompts, requests, source_path)) != 1:
        raise InvalidInput("Give exactly one of prompts, requests or source_path.")
    known = sorted(deployments) if deployments is not None else None
    lines, sample_every = request_lines(
        deployment=deployment,
        prompts=prompts,
        requests=requests,
        source_path=source_path,
        template=template,
        system_prompt=system_prompt,
        id_field=id_field,
        image_field=image_field,
        endpoint=endpoint,
        body=body,
        resolve_image=resolve_image,
        deployments=known,
    )
    result = write_batch(
        lines,
        Path(output_path),
        max_requests=max_requests,
        max_bytes=max_bytes,
        overwrite=overwrite,
        sample_every=sample_every,
        deployments=known,
    )
    if sources_home is not None:
        # A link is a convenience for the results: a build that wrote its files is not undone for it.
        with contextlib.suppress(OSError):
            built = [(Path(f.path), f.requests, f.bytes) for f in result.files]
            if source_path is not None:
                save_build_links(sources_home, Path(source_path), built)
            else:  # a file rebuilt from prompts or requests under the same name: its old link goes
                forget_build_links(sources_home, [path for path, _, _ in built])
    return result


def request_lines(
    *,
    deployment: str,
    prompts: Sequence[str] | None,
    requests: Sequence[Mapping[str, Any]] | None,
    source_path: Path | None,
    template: str | None,
    system_prompt: str | None,
    id_field: str | None,
    image_field: str | None,
    endpoint: str,
    body: Mapping[str, Any] | None,
    resolve_image: ImageResolver | None,
    deployments: Sequence[str] | None,
    unique_ids: bool = True,
) -> tuple[Iterator[dict[str, Any]], int]:
    """The request lines (lazily made, checked as they come) for one of `prompts`, `requests` or `source_path`,
    and the token sampling rate for their size; the parameters are checked here (InvalidInput), before any line.

    What `build_batch_file` writes, and a run's whole input (`runs.plan`), without the per-file limits.
    """
    if not deployment.strip():
        raise InvalidInput("deployment is empty; give the name of a Global Batch deployment.")
    if deployments is not None and deployment not in deployments:
        raise UnknownDeployment(deployment, sorted(deployments))
    if endpoint not in BUILDABLE_ENDPOINTS:
        raise InvalidInput(f"endpoint {endpoint!r} is not supported; use one of {', '.join(BUILDABLE_ENDPOINTS)}.")
    defaults = dict(body or {})
    if reserved := sorted(RESERVED_BODY_FIELDS & defaults.keys()):
        raise InvalidInput(f"body must not set {', '.join(reserved)}; use deployment and the prompt inputs.")
    root = Path(source_path).parent if source_path is not None else Path.cwd()
    factory = RequestFactory(
        deployment=deployment,
        endpoint=endpoint,
        defaults=defaults,
        template=Template(template) if template is not None else None,
        system_prompt=system_prompt,
        id_field=id_field,
        image_field=image_field,
        resolve_image=resolve_image or (lambda value: root / Path(value).expanduser()),
    )
    lines = factory.lines(
        _rows(prompts, requests, source_path), from_requests=requests is not None, unique_ids=unique_ids
    )
    size_hint = _source_size(Path(source_path)) if source_path is not None else 0
    return lines, 1 + size_hint // EXACT_TOKENS_BYTES


def _source_size(path: Path) -> int:
    """The source's size (for the token sampling rate); InvalidInput if it cannot be read."""
    with open_for_reading(path) as handle:
        return os.fstat(handle.fileno()).st_size


def _rows(
    prompts: Sequence[str] | None, requests: Sequence[Mapping[str, Any]] | None, source_path: Path | None
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if prompts is not None:
        return _prompt_rows(prompts)
    if requests is not None:
        return _request_rows(requests)
    assert source_path is not None
    return iter_rows(Path(source_path))


def _prompt_rows(prompts: Sequence[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(prompts, str | bytes):
        raise InvalidInput("prompts must be a list of strings, not one string.")
    if not prompts:
        raise InvalidInput("prompts is empty; give at least one prompt.")
    for number, prompt in enumerate(prompts, start=1):
        if not isinstance(prompt, str):
            raise InvalidInput(f"Prompt {number} is not a string.")
        yield number, {"prompt": prompt}


def _request_rows(requests: Sequence[Mapping[str, Any]]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(requests, str | bytes | Mapping):
        raise InvalidInput("requests must be a list of request objects.")
    if not requests:
        raise InvalidInput("requests is empty; give at least one request.")
    for number, request in enumerate(requests, start=1):
        if not isinstance(request, Mapping):
            raise InvalidInput(f"Request {number} is not an object.")
        yield number, request


class RequestFactory:
    """Turns rows into batch request lines (dicts)."""

    def __init__(
        self,
        *,
        deployment: str,
        endpoint: str,
        defaults: dict[str, Any],
        template: Template | None,
        system_prompt: str | None,
        id_field: str | None,
        image_field: str | None,
        resolve_image: ImageResolver,
    ) -> None:
        self.deployment = deployment
        self.endpoint = endpoint
        self.defaults = defaults
        self.template = template
        self.system_prompt = system_prompt
        self.id_field = id_field
        self.image_field = image_field
        self.resolve_image = resolve_image

    def lines(
        self, rows: Iterable[tuple[int, Mapping[str, Any]]], *, from_requests: bool, unique_ids: bool = True
    ) -> Iterator[dict[str, Any]]:
        """The request lines of `rows`; with `unique_ids`, a repeated id is an InvalidInput naming both rows (this
        keeps every id: a caller that checks uniqueness itself, in less memory, turns it off)."""
        first_row: dict[str, int] = {}
        id_column = self.id_field or "custom_id"
        for number, row in rows:
            custom_id = row.get(id_column)
            if type(custom_id) is not str or not custom_id.strip():
                custom_id = self.custom_id(row, number)
            earlier = first_row.setdefault(custom_id, number) if unique_ids else number
            if earlier != number:
                raise InvalidInput(f"Rows {earlier} and {number} have the same id {custom_id!r}; ids must be unique.")
            is_request = from_requests or "messages" in row
            body = self.request_body(row, number) if is_request else self.row_body(row, number)
            yield {"custom_id": custom_id, "method": "POST", "url": self.endpoint, "body": body}

    def custom_id(self, row: Mapping[str, Any], number: int) -> str:
        column = self.id_field or "custom_id"
        value = row.get(column)
        if type(value) is str and value.strip():
            return value
        if value is None and self.id_field is None:
            return f"request-{number}"
        value = cell_text(row, column, number)
        if not value.strip():
            raise InvalidInput(f"Row {number} has an empty id in column {self.id_field or 'custom_id'!r}.")
        return value

    def row_body(self, row: Mapping[str, Any], number: int) -> dict[str, Any]:
        """A body from a data row: its text from the template (or its only / `prompt` column), its image."""
        text = self.template.render(row, number) if self.template is not None else self.row_text(row, number)
        image = self.image_url(row, number) if self.image_field is not None else None
        return {"model": self.deployment, **self.defaults, **self.user_input(text, image)}

    def row_text(self, row: Mapping[str, Any], number: int) -> str:
        if "prompt" in row:
            return cell_text(row, "prompt", number)
        data = [name for name in row if name not in {self.id_field, self.image_field, "custom_id"}]
        if len(data) == 1:
            return cell_text(row, data[0], number)
        raise InvalidInput(
            f"Row {number} has several columns ({', '.join(map(repr, data[:10]))}); give a template such as "
            "'Summarize: {text}' to say how they make the prompt."
        )

    def request_body(self, request: Mapping[str, Any], number: int) -> dict[str, Any]:
        """A body from a request object: `messages` or `prompt`, plus its other fields as body fields."""
        extra = {key: value for key, value in request.items() if key not in {"custom_id", "messages", "prompt"}}
        if self.id_field is not None:
            extra.pop(self.id_field, None)
        if self.image_field is not None:
            extra.pop(self.image_field, None)
        if "model" in extra:
            raise InvalidInput(f"Request {number} sets model; the deployment parameter sets it for every line.")
        has_messages, has_prompt = "messages" in request, "prompt" in request
        if has_messages == has_prompt:
            raise InvalidInput(f"Request {number} needs exactly one of messages or prompt.")
        if has_prompt:
            text = self.template.render(request, number) if self.template else cell_text(request, "prompt", number)
            user = self.user_input(text, self.image_url(request, number))
        else:
            user = self.messages_input(request["messages"], number)
        return {"model": self.deployment, **self.defaults, **extra, **user}

    def user_input(self, text: str, image: str | None) -> dict[str, Any]:
        chat = self.endpoint == "/chat/completions"
        content: str | list[dict[str, Any]] = text
        if image is not None and chat:
            content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": image}}]
        elif image is not None:
            content = [{"type": "input_text", "text": text}, {"type": "input_image", "image_url": image}]
        if chat:
            user = {"role": "user", "content": content}
            if self.system_prompt is not None:
                return {"messages": [{"role": "system", "content": self.system_prompt}, user]}
            return {"messages": [user]}
        fields: dict[str, Any] = {
            "input": content if isinstance(content, str) else [{"role": "user", "content": content}]
        }
        if self.system_prompt is not None:
            fields["instructions"] = self.system_prompt
        return fields

    def messages_input(self, messages: object, number: int) -> dict[str, Any]:
        if not isinstance(messages, list) or not messages:
            raise InvalidInput(f"Request {number}: messages must be a non-empty list of messages.")
        starts_with_system = isinstance(messages[0], dict) and messages[0].get("role") in {"system", "developer"}
        if self.system_prompt is not None and not starts_with_system:
            messages = [{"role": "system", "content": self.system_prompt}, *messages]
        if self.endpoint == "/chat/completions":
            return {"messages": messages}
        return {"input": messages}

    def image_url(self, row: Mapping[str, Any], number: int) -> str | None:
        if self.image_field is None:
            return None
        value = row.get(self.image_field)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise InvalidInput(f"Row {number}: {self.image_field!r} must be a path or a URL.")
        if value.startswith(REMOTE_IMAGE_PREFIXES):
            return value
        return image_data_url(self.resolve_image(value), number)


def image_data_url(path: Path, number: int) -> str:
    """A local image as a base64 data URL."""
    kind, _ = mimetypes.guess_type(path.name)
    if kind not in IMAGE_TYPES:
        raise InvalidInput(f"Row {number}: {path} is not a PNG, JPEG, GIF or WebP image.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"Row {number}: cannot read image {path} ({exc.strerror}).") from exc
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def write_batch(
    lines: Iterable[Mapping[str, Any]],
    output_path: Path,
    *,
    max_requests: int,
    max_bytes: int,
    overwrite: bool = False,
    sample_every: int = 1,
    deployments: Iterable[str] | None = None,
) -> BuildResult:
    """Write request lines to `output_path` (split when a limit would be passed), checking each as it goes.

    Nothing is published unless every part is valid; otherwise InvalidInput names the first issues.
    """
    known = list(deployments) if deployments is not None else None
    checkers: list[Checker] = []
    dumps = orjson.dumps
    with SplitWriter(output_path, max_requests=max_requests, max_bytes=max_bytes, overwrite=overwrite) as writer:
        number = 0
        for line in lines:
            try:
                data = dumps(line) + b"\n"
            except orjson.JSONEncodeError as exc:
                raise InvalidInput(
                    f"Request {writer.total_requests + 1} cannot be written as JSON ({exc}); "
                    "check for text with broken characters or values that are not JSON."
                ) from exc
            if writer.write(data):
                checkers.append(Checker(max_requests, known, True, sample_every))
                number = 0
            number += 1
            checkers[-1].check_object(number, line)
        if not checkers:
            raise InvalidInput("There is nothing to write: no requests were given.")
        targets = writer.final_paths()
        reports = [
            checker.report(path, part.bytes, max_bytes)
            for checker, path, part in zip(checkers, targets, writer.parts, strict=True)
        ]
        _refuse_invalid(reports)
        writer.publish()
    return BuildResult(
        files=[BuiltFile(path=r.path, requests=r.requests, bytes=r.bytes) for r in reports],
        requests=sum(r.requests for r in reports),
        split=len(reports) > 1,
        estimated_input_tokens=sum(r.estimated_input_tokens for r in reports),
        tokens_exact=all(r.tokens_exact for r in reports),
        validation=reports,
    )


def _refuse_invalid(reports: list[ValidationReport]) -> None:
    issues = [(Path(report.path).name, issue) for report in reports for issue in report.issues]
    if not issues:
        return
    shown = "; ".join(f"{name} line {issue.line}: {issue.message}" for name, issue in issues[:SHOWN_ISSUES])
    raise InvalidInput(f"The requests would not make a valid batch file, so nothing was written: {shown}")
