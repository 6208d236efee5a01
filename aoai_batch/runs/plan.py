"""A run's whole input file, its shards, and a shard's file (pure: files in, files out, no network).

- `prepare_run_input` writes `input.jsonl` into the run's folder: built from prompts, requests or rows (the
  builder's `request_lines`, without its per-file limits), or copied from a batch file of any size. It is
  checked in the same pass by the validator's `Checker`, with every rule but the per-file request and byte
  limits (a run has none): custom_ids are unique over the whole run. A bad input raises the error build or
  upload would raise, and leaves nothing in the folder.
- `plan_shards` cuts it into contiguous line ranges bounded by requests, bytes (with a margin: body.model is
  rewritten) and estimated input tokens, in one streaming pass.
- `write_shard` writes one range with every line's body.model set to the shard's deployment.

Token estimates are characters-based (`tokens.APPROXIMATE`, as upload's check counts them): a line's
estimate here is what `TokenEstimator` adds for it, so the shards' estimates sum to the run's.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from aoai_batch.builder import SHOWN_ISSUES, ImageResolver, request_lines
from aoai_batch.endpoints import bare_endpoint
from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer
from aoai_batch.jsonl import MAX_LINE_BYTES, open_for_reading
from aoai_batch.models import ValidationReport
from aoai_batch.results.source_rows import SourceLink, save_link
from aoai_batch.service_checks import invalid_file_error
from aoai_batch.tokens import (
    APPROX_CHARS_PER_TOKEN,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REPLY,
    OutputBound,
    request_text,
)
from aoai_batch.validation import Checker, Findings

INPUT_NAME = "input.jsonl"
SOURCE_LINK_NAME = "source.json"
BYTES_MARGIN = 0.95  # a shard's lines may grow when body.model is rewritten: keep them under 95% of the limit
NO_LIMIT = sys.maxsize
WRITE_BUFFER = 1 << 20
READ_CHUNK = 8 << 20  # write_shard reads its range this many bytes at a time


@dataclass(frozen=True, slots=True)
class ShardRange:
    """One input shard's part of input.jsonl."""

    first_line: int  # 0-based
    line_count: int
    start_byte: int
    end_byte: int
    estimated_tokens: int


@dataclass(frozen=True, slots=True)
class PreparedRun:
    input_path: Path  # run_dir / "input.jsonl"
    source_path: Path | None  # the rows it was built from (CSV/JSONL/JSON); None for prompts/requests/a batch file
    endpoint: str  # the lines' url
    requests: int
    bytes: int
    estimated_input_tokens: int
    validation: ValidationReport  # over the whole input; the per-file request and byte limits are not applied


def prepare_run_input(
    run_dir: Path,
    *,
    deployment: str,
    batch_path: Path | None = None,
    prompts: Sequence[str] | None = None,
    requests: Sequence[Mapping[str, Any]] | None = None,
    source_path: Path | None = None,
    template: str | None = None,
    system_prompt: str | None = None,
    id_field: str | None = None,
    image_field: str | None = None,
    endpoint: str = "/chat/completions",
    body: Mapping[str, Any] | None = None,
    resolve_image: ImageResolver | None = None,
    deployments: Sequence[str] | None = None,
) -> PreparedRun:
    """Write and check the run's whole input, `run_dir / "input.jsonl"`, from exactly one of the inputs.

    `deployment` is the model the built lines name (the shard writer sets each shard's own); `deployments`,
    when given, are the names that exist (another is UnknownDeployment, or `model_not_found` in a batch file).
    With `source_path`, `run_dir / "source.json"` links the input's lines to the rows (see `source_rows`).
    Raises InvalidInput (InvalidBatchFile for a batch file's issues), with nothing left in `run_dir`.
    """
    given = (batch_path, prompts, requests, source_path)
    if sum(value is not None for value in given) != 1:
        raise InvalidInput("Give exactly one of prompts, requests, source_path or batch_path.")
    run_dir = Path(run_dir)
    made_folder = not run_dir.exists()
    target = run_dir / INPUT_NAME
    try:
        if batch_path is not None:
            findings = _copy_checked(Path(batch_path), target, deployments)
            if not findings.ok:
                raise invalid_file_error(Path(batch_path), findings.to_report(), deployments)
            endpoint = bare_endpoint(findings.url or endpoint)
        else:
            known = list(deployments) if deployments is not None else None
            lines, _ = request_lines(
                unique_ids=False,  # the checker keeps the ids, as hashes: a run may have millions
                deployment=deployment,
                prompts=prompts,
                requests=requests,
                source_path=Path(source_path) if source_path is not None else None,
                template=template,
                system_prompt=system_prompt,
                id_field=id_field,
                image_field=image_field,
                endpoint=endpoint,
                body=body,
                resolve_image=resolve_image,
                deployments=known,
            )
            findings = _write_checked(lines, target, known, endpoint)
            if source_path is not None:
                save_link(run_dir / SOURCE_LINK_NAME, SourceLink.of(Path(source_path), rows=findings.requests))
    except BaseException:
        target.unlink(missing_ok=True)
        (run_dir / SOURCE_LINK_NAME).unlink(missing_ok=True)
        if made_folder:
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise
    report = findings.to_report()
    return PreparedRun(
        input_path=target,
        source_path=Path(source_path) if source_path is not None else None,
        endpoint=endpoint,
        requests=report.requests,
        bytes=report.bytes,
        estimated_input_tokens=report.estimated_input_tokens,
        validation=report,
    )


def _checker(deployments: Sequence[str] | None) -> Checker:
    # No request limit (ids kept for the whole run, so uniqueness holds over it), characters-based tokens.
    return Checker(NO_LIMIT, deployments, count_tokens=True, sample_every=1, exact_tokens=False)


class _Tee:
    """A file read through `readline` whose every read is also written to `sink`: a copy made by the check's pass."""

    def __init__(self, source: IO[bytes], sink: IO[bytes]) -> None:
        self._readline = source.readline
        self._write = sink.write

    def readline(self, size: int = -1) -> bytes:
        data = self._readline(size)
        self._write(data)
        return data


def _copy_checked(batch_path: Path, target: Path, deployments: Sequence[str] | None) -> Findings:
    """Copy a batch file into the run's folder while checking it; the copy is kept only if it passes."""
    with open_for_reading(batch_path) as source:
        checker = _checker(deployments)
        try:
            with atomic_writer(target, overwrite=True, buffering=WRITE_BUFFER) as sink:
                total = checker.run(_Tee(source, sink), MAX_LINE_BYTES)  # type: ignore[arg-type]
                findings = checker.findings(batch_path, total, NO_LIMIT)
                if not findings.ok:
                    raise _Refused(findings)  # leaves the block: the copy is not published
        except _Refused as refused:
            return refused.findings
    findings.path = str(target)
    return findings


class _Refused(Exception):
    """Leaves the atomic writer's block without publishing (the findings go back to the caller)."""

    def __init__(self, findings: Findings) -> None:
        super().__init__("refused")
        self.findings = findings


def _write_checked(
    lines: Iterator[dict[str, Any]], target: Path, deployments: Sequence[str] | None, endpoint: str
) -> Findings:
    """Write built lines into the run's folder, checking each; InvalidInput (as build's) if any is not valid.

    The lines go through the checker's own streaming pass (`Checker.run`, whose inline path takes a plain
    request at a fraction of `check_object`'s cost); their tokens are counted here, line by line, with the
    estimate `plan_shards` uses, so the run's total is the sum of its shards'.
    """
    checker = Checker(NO_LIMIT, deployments, count_tokens=False, sample_every=1)
    with atomic_writer(target, overwrite=True, buffering=WRITE_BUFFER) as sink:
        feed = _LineFeed(lines, sink, endpoint)
        total = checker.run(feed, MAX_LINE_BYTES)  # type: ignore[arg-type]
        if feed.count == 0:
            raise InvalidInput("There is nothing to write: no requests were given.")
        findings = checker.findings(target, total, NO_LIMIT)
        findings.estimated_input_tokens, findings.tokens_exact = feed.tokens, False
        findings.max_output_tokens = feed.output_bound.total  # what the run's estimate bounds the output by
        if not findings.ok:
            shown = "; ".join(f"line {issue.line}: {issue.message}" for issue in findings.issues[:SHOWN_ISSUES])
            raise InvalidInput(f"The requests would not make a valid batch file, so nothing was written: {shown}")
    return findings


class _LineFeed:
    """Built request lines as a file the checker reads with `readline`, each also written to `sink` as it goes."""

    def __init__(self, lines: Iterator[dict[str, Any]], sink: IO[bytes], endpoint: str) -> None:
        self.lines = lines
        self.write = sink.write
        self.endpoint = endpoint
        self.count = 0
        self.tokens = 0
        self.output_bound = OutputBound()

    def readline(self, size: int = -1) -> bytes:
        line = next(self.lines, None)
        if line is None:
            return b""
        self.count += 1
        try:
            data = orjson.dumps(line) + b"\n"
        except orjson.JSONEncodeError as exc:
            raise InvalidInput(
                f"Request {self.count} cannot be written as JSON ({exc}); "
                "check for text with broken characters or values that are not JSON."
            ) from exc
        if len(data) > size > 0:
            raise InvalidInput(f"Request {self.count} is {len(data)} bytes, too long to be one request.")
        body = line.get("body")
        if type(body) is dict:
            self.tokens += line_tokens(self.endpoint, body)
            self.output_bound.add(body)
        else:
            self.output_bound.total = None
        self.write(data)
        return data


# --- planning -------------------------------------------------------------------------------------


CHARS = APPROX_CHARS_PER_TOKEN


def _approximate(text: str) -> int:
    return -(-len(text) // APPROX_CHARS_PER_TOKEN)


def line_tokens(endpoint: str, body: dict[str, Any]) -> int:
    """The characters-based estimate of one request's input tokens: what `TokenEstimator` (APPROXIMATE,
    every request counted) adds for it."""
    if endpoint == "/chat/completions":
        messages = body.get("messages")
        if type(messages) is list:
            tokens = TOKENS_PER_REPLY
            for message in messages:  # the plain message, a role and a text, made fast
                if type(message) is dict and len(message) == 2:
                    role, content = message.get("role"), message.get("content")
                    if type(role) is str and type(content) is str:
                        # _approximate, inlined: this runs once per message of a run
                        tokens += TOKENS_PER_MESSAGE - (-len(role) // CHARS) - (-len(content) // CHARS)
                        continue
                found = request_text(endpoint, {"messages": [message]})
                tokens += found.fixed - TOKENS_PER_REPLY + sum(map(_approximate, found.texts))
            return tokens
    found = request_text(endpoint, body)
    return found.fixed + sum(map(_approximate, found.texts))


def plan_shards(
    input_path: Path,
    *,
    max_requests: int,
    max_bytes: int,
    max_tokens: int | None,
    deployments: Sequence[str] = (),
) -> list[ShardRange]:
    """Cut the run's input into contiguous shards, in order, each within all three bounds.

    Requests: at most `max_requests`. Bytes: at most 95% of `max_bytes`, counting each line as it will be
    once body.model names the longest of `deployments`. Tokens: at most `max_tokens` (None: no bound); a
    single request over it is a shard of its own (a larger deployment may take it). One pass, bounded memory.
    Raises InvalidInput when one request alone is over the byte bound.
    """
    if max_requests < 1 or max_bytes < 1 or (max_tokens is not None and max_tokens < 1):
        raise InvalidInput("max_requests, max_bytes and max_tokens must be above 0.")
    byte_bound = int(max_bytes * BYTES_MARGIN)
    token_bound = max_tokens if max_tokens is not None else NO_LIMIT
    longest = max((len(orjson.dumps(name)) for name in deployments), default=0)
    shards: list[ShardRange] = []
    first = offset = start = tokens = count = size = 0
    growth: int | None = None
    endpoint: str | None = None
    loads = orjson.loads
    with open_for_reading(input_path) as handle:
        for number, data in enumerate(iter(functools.partial(handle.readline, MAX_LINE_BYTES), b"")):
            obj = loads(data)
            body = obj["body"]
            if growth is None:
                growth = max(0, longest - len(orjson.dumps(body.get("model"))))
                endpoint = bare_endpoint(obj["url"])
            line_bytes = len(data) + growth
            if line_bytes > byte_bound:
                raise InvalidInput(
                    f"Request {number + 1} of the run's input is {line_bytes} bytes, more than a shard may hold "
                    f"({byte_bound} bytes, 95% of the file limit); shorten it (e.g. smaller images)."
                )
            assert endpoint is not None
            cost = line_tokens(endpoint, body) if type(body) is dict else 0
            if count and (count == max_requests or size + line_bytes > byte_bound or tokens + cost > token_bound):
                shards.append(ShardRange(first, count, start, offset, tokens))
                first, start, count, size, tokens = number, offset, 0, 0, 0
            count += 1
            size += line_bytes
            tokens += cost
            offset += len(data)
    if count:
        shards.append(ShardRange(first, count, start, offset, tokens))
    return shards


# --- a shard's file -------------------------------------------------------------------------------


def write_shard(input_path: Path, shard: ShardRange, dest: Path, *, deployment: str) -> int:
    """Write the shard's lines of input.jsonl to `dest` (atomically, replacing it), each line's body.model
    set to `deployment`; returns the bytes written.

    Lines as this program writes them (`"body":{"model":...` once) are rewritten as bytes; any other is
    parsed and dumped again.
    """
    new_model = orjson.dumps(deployment)
    rewrite = line_rewriter(new_model)
    written = 0
    writer = atomic_writer(Path(dest), overwrite=True, buffering=WRITE_BUFFER)
    with open_for_reading(input_path) as source, writer as out:
        source.seek(shard.start_byte)
        left = shard.end_byte - shard.start_byte
        carry = b""
        while left > 0:
            chunk = source.read(min(READ_CHUNK, left))
            if not chunk:
                raise InvalidInput(f"{input_path} is shorter than its plan says; the run's input was changed.")
            left -= len(chunk)
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            block = _rewrite_block(lines, new_model) or b"\n".join(map(rewrite, lines)) + b"\n"
            out.write(block)
            written += len(block)
        if carry:
            block = rewrite(carry) + b"\n"
            out.write(block)
            written += len(block)
    return written


MODEL_KEY = b'"model":'
BODY_HEAD = b'"body":{"model":'


def _rewrite_block(lines: list[bytes], new_model: bytes) -> bytes | None:
    """The block's lines rewritten in one replace, when every line is as the line rewriter's short path takes
    it (one `"model":`, right after `"body":{`) and all name the same model; None otherwise.

    Every line has exactly one `"model":`, and the block as many `"body":{"model":<old>` as lines: so each
    line has exactly one, and it is that line's `"model":`, the one the per-line path would rewrite.
    """
    if not lines or not all(line.count(MODEL_KEY) == 1 for line in lines):
        return None
    first = lines[0]
    start = first.find(BODY_HEAD) + len(BODY_HEAD)
    end = first.find(b'"', start + 1)
    if start < len(BODY_HEAD) or first[start : start + 1] != b'"' or end < 0 or b"\\" in first[start:end]:
        return None
    old = BODY_HEAD + first[start : end + 1]
    block = b"\n".join(lines)
    if block.count(old) != len(lines):
        return None
    return block.replace(old, BODY_HEAD + new_model) + b"\n"


def line_rewriter(new_model: bytes) -> Callable[[bytes], bytes]:
    """A function of one request line (no newline) to the same line with body.model set to `new_model` (JSON)."""
    key = b'"model":'
    head = b'"body":{"model":'
    dumps, loads = orjson.dumps, orjson.loads

    def rewrite(line: bytes) -> bytes:
        if line.count(key) == 1:
            at = line.find(head)
            if at >= 0:
                value_at = at + len(head)
                end = line.find(b'"', value_at + 1)
                # The old model as written: a plain string (no escapes) ends at the next quote.
                if line[value_at : value_at + 1] == b'"' and end > 0 and b"\\" not in line[value_at:end]:
                    return line[:value_at] + new_model + line[end + 1 :]
        obj = loads(line)
        obj["body"]["model"] = loads(new_model)
        return dumps(obj)

    return rewrite
