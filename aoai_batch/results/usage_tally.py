"""The tokens an output file reports, by model: what its cost is computed from (`aoai_batch.cost`).

One pass of its own over the output file, decoding only `response.body.model` and `usage` (msgspec skips
the rest of each line), so the join's fast paths stay as they are. Chat and completions answers report
`prompt_tokens` (`prompt_tokens_details.cached_tokens` of them cached) and `completion_tokens`; /responses
answers `input_tokens` (`input_tokens_details.cached_tokens`) and `output_tokens`. A line of another shape
(not JSON, a body sent as a string, no usage) adds nothing.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from aoai_batch.cost import ModelUsage
from aoai_batch.jsonl import iter_lines, open_for_reading


class _Details(msgspec.Struct, gc=False):
    cached_tokens: int = 0


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    prompt_tokens_details: _Details | None = None
    input_tokens_details: _Details | None = None


class _Body(msgspec.Struct, gc=False):
    model: str | None = None
    usage: _Usage | None = None


class _Response(msgspec.Struct, gc=False):
    body: _Body | None = None


class _Line(msgspec.Struct, gc=False):
    response: _Response | None = None


_LINE = msgspec.json.Decoder(_Line)


def tally_usage(path: Path | None) -> dict[str | None, ModelUsage]:
    """The usage each model's answers in `path` report (None: lines that name no model); empty for no file."""
    tally: dict[str | None, ModelUsage] = {}
    if path is None:
        return tally
    with open_for_reading(path) as handle:
        for line in iter_lines(handle):
            found = _usage_of(line.data) if line.data is not None else None  # an over-long line is skipped
            if found is not None:
                tally.setdefault(found[0], ModelUsage()).add(found[1])
    return tally


def _usage_of(line: bytes) -> tuple[str | None, ModelUsage] | None:
    try:
        decoded = _LINE.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):  # not JSON, or another shape: no usage to count
        return None
    body = decoded.response.body if decoded.response is not None else None
    usage = body.usage if body is not None else None
    if body is None or usage is None:
        return None
    details = usage.prompt_tokens_details or usage.input_tokens_details
    return body.model, ModelUsage(
        prompt_tokens=usage.prompt_tokens or usage.input_tokens,
        cached_tokens=details.cached_tokens if details is not None else 0,
        completion_tokens=usage.completion_tokens or usage.output_tokens,
    )
