"""The echo engine: a deterministic answer derived from each request, with its tokens counted."""

from __future__ import annotations

from typing import Any

from aoai_batch.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, get_counter

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


def _texts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


class EchoEngine:
    """Answers every request at once with its last user text; paced by the emulator's clock."""

    paced = True

    def __init__(self) -> None:
        self.count = get_counter().count

    def answer(self, endpoint: str, body: dict[str, Any], model: str, created: int, answer_id: str) -> dict[str, Any]:
        """The response body for one request (the endpoint is the batch's, without `/v1`)."""
        if endpoint == "/embeddings":
            return self._embedding(body, model)
        if endpoint == "/chat/completions":
            texts, framing, prompt = self._chat_prompt(body.get("messages"))
        else:
            texts = _texts(body.get("input") if endpoint == "/responses" else body.get("prompt"))
            framing, prompt = 0, texts[-1] if texts else ""
        count = self.count
        prompt_tokens = framing + sum(count(t) for t in texts)
        reply, finish = self._reply(prompt, body)
        completion_tokens = count(reply)
        usage = (prompt_tokens, completion_tokens)
        if endpoint == "/chat/completions":
            return self._chat(reply, finish, usage, model, created, answer_id)
        if endpoint == "/responses":
            return self._response(reply, usage, model, created, answer_id)
        return self._completion(reply, finish, usage, model, created, answer_id)

    @staticmethod
    def _chat_prompt(messages: object) -> tuple[list[str], int, str]:
        texts: list[str] = []
        last_user = ""
        if not isinstance(messages, list):
            return texts, TOKENS_PER_REPLY, last_user
        for message in messages:
            if not isinstance(message, dict):
                continue
            parts = _texts(message.get("content"))
            texts += parts
            if message.get("role") == "user" and parts:
                last_user = parts[-1]
        return texts, TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_REPLY, last_user

    def _reply(self, prompt: str, body: dict[str, Any]) -> tuple[str, str]:
        reply = REPLY_PREFIX + prompt[:MAX_ECHO_CHARS]
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
        if isinstance(limit, int) and limit > 0 and self.count(reply) > limit:
            # Roughly four characters a token: enough to show a cut answer and finish_reason "length".
            return reply[: limit * 4], "length"
        return reply, "stop"

    @staticmethod
    def _chat(
        reply: str, finish: str, usage: tuple[int, int], model: str, created: int, answer_id: str
    ) -> dict[str, Any]:
        return {
            "choices": [
                {
                    "content_filter_results": CONTENT_FILTER_RESULTS,
                    "finish_reason": finish,
                    "index": 0,
                    "logprobs": None,
                    "message": {"content": reply, "refusal": None, "role": "assistant"},
                }
            ],
            "created": created,
            "id": f"chatcmpl-{answer_id}",
            "model": model,
            "object": "chat.completion",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
            "system_fingerprint": "fp_emulator",
            "usage": {"completion_tokens": usage[1], "prompt_tokens": usage[0], "total_tokens": sum(usage)},
        }

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
        tokens = sum(self.count(t) for t in texts)
        return {
            "object": "list",
            "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
