"""The general line reader: the user's question in an input line, the answer in an output or error line.

Every shape is handled here (on lines already parsed into dicts), so the join never guesses; `fast_lines`
decodes the common shapes faster and comes here for the rest. Output and error lines come in several shapes:
Azure's and OpenAI's `{"custom_id", "response": {"status_code", "request_id", "body"}, "error"}` with a
chat completion, a /responses, a completions or an embeddings body; a failed request either as
`"error": {"code", "message"}` with no response, or as a response whose status code is 4xx/5xx and whose
body is `{"error": {...}}`.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from aoai_batch.text import truncate

Status = Literal["succeeded", "failed"]
CODE_CHARS = 100
UsageTriple = tuple[int, int, int]


class Outcome:
    """What became of one request (plain slots: a hundred thousand of these are built per join)."""

    __slots__ = ("code", "content", "finish_reason", "message", "status", "usage")

    def __init__(
        self,
        status: Status,
        *,
        content: str | None = None,
        finish_reason: str | None = None,
        usage: UsageTriple | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        self.status = status
        self.content = content
        self.finish_reason = finish_reason
        self.usage = usage
        self.code = code
        self.message = message

    def fields(self) -> dict[str, Any]:
        """The row's answer columns, in the results file's order."""
        usage = self.usage
        return {
            "content": self.content,
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[2]}
            if usage
            else None,
            "error": {"code": self.code, "message": self.message} if self.status == "failed" else None,
        }


NO_ANSWER: dict[str, Any] = {"content": None, "finish_reason": None, "usage": None, "error": None}


# --- input lines -----------------------------------------------------------------------------------


def question_of(request: dict[str, Any]) -> str | None:
    """The request's last user content as text (images shown as `[image]`), or None when it has none."""
    body = request.get("body")
    if type(body) is not dict:
        return None
    messages = body.get("messages")
    if type(messages) is list:
        last = messages[-1] if messages else None
        if type(last) is dict and last.get("role") == "user" and type(content := last.get("content")) is str:
            return content  # the common case, taken without the general walk below
        return _last_user_text(messages)
    given = body.get("input", body.get("prompt"))
    if isinstance(given, list):
        if all(isinstance(item, dict) for item in given):
            return _last_user_text(given)
        return _text_of(given[-1] if given else None)
    return _text_of(given)


def _last_user_text(items: list[Any]) -> str | None:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role", "user") == "user":
            return _text_of(item.get("content"))
    return None


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [_part_text(part) for part in content]
        return " ".join(part for part in parts if part) or None
    if content is None:
        return None
    return orjson.dumps(content).decode()


def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return None
    kind = part.get("type", "")
    if isinstance(part.get("text"), str):
        return str(part["text"])
    if isinstance(kind, str) and ("image" in kind or "file" in kind or "audio" in kind):
        return f"[{kind.removeprefix('input_').removesuffix('_url')}]"
    return None


# --- output and error lines ------------------------------------------------------------------------


# The answer columns of a plain chat answer (the bytes orjson gives for them, formatted in half the time).
ANSWER_WITH_USAGE = (
    b'"content":%b,"finish_reason":%b,'
    b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d},"error":null}'
)
ANSWER_WITHOUT_USAGE = b'"content":%b,"finish_reason":%b,"usage":null,"error":null}'
_dumps = orjson.dumps


def plain_answer_columns(content: str, finish_reason: Any, usage: UsageTriple | None) -> bytes:
    """The answer columns of a successful chat answer, formatted directly (orjson's bytes, in half the time).

    The one formatter of a plain answer: both readers (this one and `fast_lines`) call it.
    """
    finish = _dumps(finish_reason if type(finish_reason) is str else None)
    if usage:
        return ANSWER_WITH_USAGE % (_dumps(content), finish, *usage)
    return ANSWER_WITHOUT_USAGE % (_dumps(content), finish)


def answer_fields(columns: bytes) -> dict[str, Any]:
    """The answer columns back as a dict (`content`, `finish_reason`, `usage`, `error`)."""
    fields: dict[str, Any] = orjson.loads(b"{" + columns)
    return fields


def answer_of(line: dict[str, Any]) -> tuple[Outcome | None, bytes, UsageTriple | None]:
    """(the outcome, or None for a plain chat answer; its answer columns as JSON; its usage).

    The answer columns are the rest of a JSON object (`"content":...,"error":...}`), ready to end a row.
    A plain successful chat completion (nearly every line of a big batch) takes a short path.
    """
    response = line.get("response")
    if line.get("error") is None and type(response) is dict and response.get("status_code") == 200:
        body = response.get("body")
        choices = body.get("choices") if type(body) is dict and body.get("error") is None else None
        first = choices[0] if type(choices) is list and choices else None
        message = first.get("message") if type(first) is dict else None
        content = message.get("content") if type(message) is dict else None
        if type(content) is str and content:
            finish_reason = first.get("finish_reason")  # type: ignore[union-attr]
            usage = _usage(body.get("usage"))  # type: ignore[union-attr]
            return None, plain_answer_columns(content, finish_reason, usage), usage
    outcome = outcome_of(line)
    return outcome, orjson.dumps(outcome.fields())[1:], outcome.usage


def outcome_of(line: dict[str, Any]) -> Outcome:
    """Classify one output or error line (already parsed, with a custom_id)."""
    error = line.get("error")
    if isinstance(error, dict) and error:
        return _failure(error, None)
    response = line.get("response")
    if not isinstance(response, dict):
        return Outcome("failed", code="no_response", message="The line has neither a response nor an error.")
    status_code = response.get("status_code")
    body = response.get("body")
    if isinstance(body, str):  # some gateways send the body as a JSON string
        body = _parse_or_none(body)
    if not isinstance(body, dict):
        body = {}
    if isinstance(body.get("error"), dict) or (isinstance(status_code, int) and status_code >= 400):
        return _failure(body.get("error") or {}, status_code)
    return _success(body)


def _parse_or_none(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _failure(error: dict[str, Any], status_code: Any) -> Outcome:
    code = error.get("code")
    message = error.get("message")
    if not isinstance(code, str) or not code:
        code = f"http_{status_code}" if isinstance(status_code, int) else "unknown_error"
    # A code is a short word; a long one (a hostile or broken file) would bloat every summary that counts it.
    return Outcome("failed", code=truncate(code, CODE_CHARS), message=message if isinstance(message, str) else None)


def _success(body: dict[str, Any]) -> Outcome:
    usage = _usage(body.get("usage"))
    if isinstance(body.get("choices"), list):
        content, finish_reason = _from_choices(body["choices"])
    elif isinstance(body.get("output"), list):
        content, finish_reason = _from_responses(body)
    elif isinstance(body.get("data"), list):  # embeddings: the vectors are the answer
        content, finish_reason = _embeddings(body["data"]), None
    else:
        content, finish_reason = None, None
    return Outcome("succeeded", content=content, finish_reason=finish_reason, usage=usage)


def _embeddings(data: list[Any]) -> str:
    return orjson.dumps([item.get("embedding") for item in data if isinstance(item, dict)]).decode()


def _from_choices(choices: list[Any]) -> tuple[str | None, str | None]:
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    finish_reason = first.get("finish_reason")
    message = first.get("message")
    if isinstance(message, dict):
        content = message.get("content")
        if isinstance(content, list):  # content parts (audio transcripts, text parts)
            content = _text_of(content)
        if not isinstance(content, str) or not content:
            content = _tool_calls_or_refusal(message, content)
    else:
        content = first.get("text")  # /completions
    return (content if isinstance(content, str) else None), (finish_reason if isinstance(finish_reason, str) else None)


def _tool_calls_or_refusal(message: dict[str, Any], content: Any) -> str | None:
    if message.get("tool_calls"):
        return orjson.dumps(message["tool_calls"]).decode()
    if isinstance(message.get("refusal"), str):
        return str(message["refusal"])
    return content if isinstance(content, str) else None


def _from_responses(body: dict[str, Any]) -> tuple[str | None, str | None]:
    texts: list[str] = []
    for item in body["output"]:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            texts.append(orjson.dumps(item).decode())
        for part in item.get("content") or ():
            if isinstance(part, dict):
                text = part.get("text", part.get("refusal"))
                if isinstance(text, str):
                    texts.append(text)
    details = body.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    # /responses has no finish_reason: a completed response reads as chat's "stop", an incomplete one by its reason.
    finish_reason = reason if isinstance(reason, str) else ("stop" if body.get("status") == "completed" else None)
    return ("".join(texts) if texts else None), finish_reason


def _usage(usage: Any) -> UsageTriple | None:
    if type(usage) is not dict:
        return None
    counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens"))
    if all(type(n) is int and n >= 0 for n in counts):
        return counts  # type: ignore[return-value]
    prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    total = _int(usage.get("total_tokens")) or prompt + completion
    return (prompt, completion, total)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
