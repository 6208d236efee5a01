"""The echo engine: a deterministic answer derived from each request, with its tokens counted.

Tokens are estimated at four characters each (exact BPE counting would cost more than everything else the
engine does per request). Chat answers, the hot path, are whole output lines filled into a `%` template made
once per run of a batch (the line's frame, content filters, created and model pre-serialised), so a request
costs two small `orjson.dumps` and one format.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from aoai_batch.emulator.clock import EmulatorClock
from aoai_batch.emulator.lifecycle import BatchRunner
from aoai_batch.emulator.lines import Answerer, answer_line, answer_line_template
from aoai_batch.emulator.records import EmulatedBatch
from aoai_batch.endpoints import bare_endpoint
from aoai_batch.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY

REPLY_PREFIX = "Echo: "
MAX_ECHO_CHARS = 2000
SAFE = {"filtered": False, "severity": "safe"}
# Azure adds content-filter annotations to every answer; one shared object keeps them cheap.
CONTENT_FILTER_RESULTS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
PROMPT_FILTER_RESULTS = [
    {
        "prompt_index": 0,
        "content_filter_results": {**CONTENT_FILTER_RESULTS, "jailbreak": {"filtered": False, "detected": False}},
    }
]


def chat_template(finish: str, created: int, model: str) -> bytes:
    """A chat completion's JSON with one batch's constants in; its `%` fields: content (JSON), id suffix, and
    completion, prompt and total tokens."""
    return (
        b'{"choices":[{"content_filter_results":'
        + orjson.dumps(CONTENT_FILTER_RESULTS)
        + b',"finish_reason":"'
        + finish.encode()
        + b'","index":0,"logprobs":null,"message":{"content":%s,"refusal":null,"role":"assistant"}}],"created":'
        + b"%d" % created
        + b',"id":"chatcmpl-%s","model":'
        + orjson.dumps(model).replace(b"%", b"%%")
        + b',"object":"chat.completion","prompt_filter_results":'
        + orjson.dumps(PROMPT_FILTER_RESULTS)
        + b',"system_fingerprint":"fp_emulator","usage":{"completion_tokens":%d,"prompt_tokens":%d,"total_tokens":%d}}'
    )


def count_tokens(text: str) -> int:
    return -(-len(text) // 4)


def _texts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def _chat_prompt(messages: object) -> tuple[str, int]:
    """The last user text and the prompt's estimated tokens (framing included)."""
    if type(messages) is not list:
        return "", TOKENS_PER_REPLY
    chars = 0
    last_user = ""
    for message in messages:
        content = message.get("content") if type(message) is dict else None
        if type(content) is str:
            chars += len(content)
        elif content is not None:
            parts = _texts(content)
            chars += sum(map(len, parts))
            content = parts[-1] if parts else None
        if content and message["role"] == "user":
            last_user = content
    return last_user, TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_REPLY + (chars + 3) // 4


def _limit(body: dict[str, Any]) -> object:
    return body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")


def _chat_answerer(model: str, created: int) -> Answerer:
    """Chat lines for one run of a batch: the same bytes as answer_line around EchoEngine.answer."""
    stop = answer_line_template(chat_template("stop", created, model))
    length = answer_line_template(chat_template("length", created, model))
    dumps = orjson.dumps

    def line(custom_id: str, request_id: bytes, body: dict[str, Any]) -> bytes:
        prompt, prompt_tokens = _chat_prompt(body.get("messages"))
        reply = REPLY_PREFIX + prompt[:MAX_ECHO_CHARS]
        template = stop
        completion_tokens = (len(reply) + 3) // 4
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
        if type(limit) is int and 0 < limit < completion_tokens:
            reply, template = reply[: limit * 4], length
            completion_tokens = (len(reply) + 3) // 4
        total = prompt_tokens + completion_tokens
        return template % (
            dumps(custom_id),
            dumps(reply),
            request_id,
            completion_tokens,
            prompt_tokens,
            total,
            request_id,
        )

    return line


class EchoEngine:
    """Answers each request with its last user text, inline, at the pace the emulator's clock sets."""

    def process(self, runner: BatchRunner, record: EmulatedBatch, now: float) -> float | None:
        """Answer the share of the batch that `processing_seconds` says is due by `now` (or by its expiry)."""
        start = record.in_progress_at or now
        horizon = min(now, record.expires_at)
        end = start + record.processing_seconds
        if horizon >= end:
            due = record.total
        else:
            due = math.floor(record.total * (horizon - start) / record.processing_seconds)
        if due > record.cursor:
            answer = self.answerer(bare_endpoint(record.endpoint), runner.model_of(record), int(horizon))
            runner.answer_inline(record, due, answer)
        return end if record.cursor >= record.total else None

    def worker(self, runner: BatchRunner, clock: EmulatorClock) -> None:
        """None: every answer is given in `process`, as the clock moves."""
        return None

    def answerer(self, endpoint: str, model: str, created: int) -> Answerer:
        """Whole output lines for one run of a batch (the endpoint is the batch's, without `/v1`)."""
        if endpoint == "/chat/completions":
            return _chat_answerer(model, created)

        def line(custom_id: str, request_id: bytes, body: dict[str, Any]) -> bytes:
            answer_id = request_id.decode()
            return answer_line(custom_id, answer_id, self.answer(endpoint, body, model, created, answer_id))

        return line

    def answer(self, endpoint: str, body: dict[str, Any], model: str, created: int, answer_id: str) -> bytes:
        """The JSON response body for one request (the endpoint is the batch's, without `/v1`)."""
        if endpoint == "/embeddings":
            return orjson.dumps(self._embedding(body, model))
        if endpoint == "/chat/completions":
            prompt, prompt_tokens = _chat_prompt(body.get("messages"))
        else:
            texts = _texts(body.get("input") if endpoint == "/responses" else body.get("prompt"))
            prompt, prompt_tokens = texts[-1] if texts else "", sum(map(count_tokens, texts))
        reply = REPLY_PREFIX + prompt[:MAX_ECHO_CHARS]
        finish = "stop"
        limit = _limit(body)
        if type(limit) is int and 0 < limit < (len(reply) + 3) // 4:
            # Four characters a token: enough to show a cut answer and finish_reason "length".
            reply, finish = reply[: limit * 4], "length"
        completion_tokens = (len(reply) + 3) // 4
        if endpoint == "/chat/completions":
            return chat_template(finish, created, model) % (
                orjson.dumps(reply),
                answer_id.encode(),
                completion_tokens,
                prompt_tokens,
                prompt_tokens + completion_tokens,
            )
        usage = (prompt_tokens, completion_tokens)
        if endpoint == "/responses":
            return orjson.dumps(self._response(reply, usage, model, created, answer_id))
        return orjson.dumps(self._completion(reply, finish, usage, model, created, answer_id))

    @staticmethod
    def _response(reply: str, usage: tuple[int, int], model: str, created: int, answer_id: str) -> dict[str, Any]:
        return {
            "id": f"resp_{answer_id}",
            "object": "response",
            "created_at": created,
            "status": "completed",
            "model": model,
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{answer_id}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply, "annotations": []}],
                }
            ],
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)},
        }

    @staticmethod
    def _completion(
        reply: str, finish: str, usage: tuple[int, int], model: str, created: int, answer_id: str
    ) -> dict[str, Any]:
        return {
            "id": f"cmpl-{answer_id}",
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": reply, "index": 0, "finish_reason": finish, "logprobs": None}],
            "usage": {"completion_tokens": usage[1], "prompt_tokens": usage[0], "total_tokens": sum(usage)},
        }

    def _embedding(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        texts = _texts(body.get("input"))
        vectors = [[round((sum(t.encode()) % 97) / 97, 4), round(len(t) % 89 / 89, 4), 0.5] for t in texts]
        tokens = sum(map(count_tokens, texts))
        return {
            "object": "list",
            "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
