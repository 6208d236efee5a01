"""Reading one input or output line fast: typed decoding of the common shapes, the general reader otherwise.

A plain chat request or answer is decoded with msgspec into the few fields the join uses; everything
else on the line (Azure's content-filter annotations, ids, timestamps) is skipped without building
objects, which is what makes the join cheaper than parsing its files with a general JSON parser. Any
line that does not fit (another endpoint, an error, an odd type) goes to `lines`, which handles
every shape: the fast path only ever returns what the general one would.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson

from aoai_batch.results.lines import Outcome, UsageTriple, answer_of, plain_answer_columns, question_of

# Typed as strictly as the short path needs: a line whose values do not fit goes to the general reader.
Count = Annotated[int, msgspec.Meta(ge=0)]
# gc=False: decoded JSON holds no reference cycles, and structs the collector does not track are cheaper
# to make and free (several per line, a few hundred thousand per join).


class _Message(msgspec.Struct, gc=False):
    role: Any = None
    content: Any = None


class _RequestBody(msgspec.Struct, gc=False):
    messages: list[_Message] | None = None


class _Request(msgspec.Struct, gc=False):
    custom_id: Any = None
    body: _RequestBody | None = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: Count
    completion_tokens: Count
    total_tokens: Count


class _AnswerMessage(msgspec.Struct, gc=False):
    content: str | None = None


class _Choice(msgspec.Struct, gc=False):
    message: _AnswerMessage | None = None
    finish_reason: str | None = None


class _AnswerBody(msgspec.Struct, gc=False):
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: Any = None


class _Response(msgspec.Struct, gc=False):
    status_code: int | None = None
    body: _AnswerBody | None = None


class _AnswerLine(msgspec.Struct, gc=False):
    custom_id: Any = None
    response: _Response | None = None
    error: Any = None


_REQUEST = msgspec.json.Decoder(_Request)
_ANSWER = msgspec.json.Decoder(_AnswerLine)


def read_request(line: bytes) -> tuple[str, str | None] | None:
    """(custom_id, last user content) of an input line; None when it is not a JSON object with a string custom_id."""
    try:
        request = _REQUEST.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):  # not JSON, or not this shape: the general reader decides
        request = None
    if request is not None:
        if type(request.custom_id) is not str:
            return None
        messages = request.body.messages if request.body is not None else None
        last = messages[-1] if messages else None
        if last is not None and last.role == "user" and type(last.content) is str:
            return request.custom_id, last.content
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    custom_id = parsed.get("custom_id") if type(parsed) is dict else None
    return (custom_id, question_of(parsed)) if type(custom_id) is str else None


def read_answer(line: bytes) -> tuple[str, Outcome | None, bytes, UsageTriple | None] | None:
    """(custom_id, outcome, answer columns, usage) of an output or error line, as `answer_of` gives them;
    None when the line is not a JSON object with a string custom_id.

    A successful chat answer with text content (nearly every line of a big batch) is decoded here and
    formatted by `plain_answer_columns`, as the general reader does: this runs once per answer.
    """
    try:
        answer = _ANSWER.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):  # not JSON, or not this shape: the general reader decides
        return _read_any_answer(line)
    if type(answer.custom_id) is not str:
        return None
    response = answer.response
    body = response.body if response is not None and response.status_code == 200 and answer.error is None else None
    if body is not None and body.error is None and body.choices:
        choice = body.choices[0]
        content = choice.message.content if choice.message is not None else None
        if content:
            counts = body.usage
            usage = (
                (counts.prompt_tokens, counts.completion_tokens, counts.total_tokens) if counts is not None else None
            )
            return answer.custom_id, None, plain_answer_columns(content, choice.finish_reason, usage), usage
    return _read_any_answer(line)


def _read_any_answer(line: bytes) -> tuple[str, Outcome | None, bytes, UsageTriple | None] | None:
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    custom_id = parsed.get("custom_id") if type(parsed) is dict else None
    return (custom_id, *answer_of(parsed)) if type(custom_id) is str else None
