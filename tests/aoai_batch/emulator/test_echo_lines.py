"""The echo engine's whole-line fast path writes exactly the lines of its general path, in Azure's shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aoai_batch.emulator.echo import EchoEngine
from aoai_batch.emulator.lines import answer_line

CHAT_BODIES: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "When was Microsoft founded?"}]},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "100% sure? %s %d %%"}]},
    {"messages": [{"role": "user", "content": 'ünïcødé ✓ "quoted" \\ back\nline 😀'}], "max_tokens": 2},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]},
    {"messages": [{"role": "user", "content": "long " * 50}], "max_completion_tokens": 1},
    {"messages": [{"role": "user", "content": "x" * 5000}], "max_tokens": 0},
    {"messages": [{"role": "assistant", "content": None}], "max_tokens": True},
    {"messages": []},
    {"messages": "not a list"},
]
MODELS = ["gpt-4o-mini-2024-07-18", "odd%model%s"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("body", CHAT_BODIES)
def test_chat_lines_from_the_batch_template_equal_the_general_answer_line(body: dict[str, Any], model: str) -> None:
    engine = EchoEngine()
    line = engine.answerer("/chat/completions", model, 1_700_000_000)("task-%s-1", b"0123456789ab-00000000002a", body)
    general = engine.answer("/chat/completions", body, model, 1_700_000_000, "0123456789ab-00000000002a")
    assert line == answer_line("task-%s-1", "0123456789ab-00000000002a", general)


@pytest.mark.parametrize("endpoint", ["/completions", "/responses", "/embeddings"])
def test_other_endpoints_get_the_general_answer_line(endpoint: str) -> None:
    engine = EchoEngine()
    body = {"prompt": "say hi", "input": "say hi", "max_tokens": 1}
    line = engine.answerer(endpoint, "m", 5)("c1", b"abc-000000000001", body)
    assert line == answer_line("c1", "abc-000000000001", engine.answer(endpoint, body, "m", 5, "abc-000000000001"))


def test_a_chat_line_has_azures_shape_with_content_filters_and_usage() -> None:
    body = {"messages": [{"role": "user", "content": "long " * 50}], "max_tokens": 3}
    raw = EchoEngine().answerer("/chat/completions", "gpt-4o", 42)("task-7", b"abc-000000000007", body)
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == 1
    line = orjson.loads(raw)
    assert line["custom_id"] == "task-7"
    assert line["error"] is None
    response = line["response"]
    assert response["status_code"] == 200
    assert response["request_id"] == "abc-000000000007"
    answer = response["body"]
    assert answer["object"] == "chat.completion"
    assert answer["id"] == "chatcmpl-abc-000000000007"
    assert answer["created"] == 42
    assert answer["model"] == "gpt-4o"
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "length"
    assert set(choice["content_filter_results"]) == {"hate", "self_harm", "sexual", "violence"}
    assert isinstance(choice["message"]["content"], str)
    assert answer["prompt_filter_results"][0]["prompt_index"] == 0
    usage = answer["usage"]
    assert usage["completion_tokens"] == 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
