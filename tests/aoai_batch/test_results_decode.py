"""The fast line readers agree with the general ones and never raise, whatever the line."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoai_batch.results.fast_lines import read_answer, read_request
from aoai_batch.results.lines import answer_of, question_of


def chat_line(**change: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": change.pop("content", 'Bonjour, « é » \\ " \n')}
    choice = {"index": 0, "finish_reason": change.pop("finish_reason", "stop"), "message": message}
    body: dict[str, Any] = {
        "choices": [choice],
        "usage": change.pop("usage", {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    }
    response = {"status_code": change.pop("status_code", 200), "request_id": "r", "body": body}
    return {"custom_id": "c", "response": response, "error": None, **change}


ANSWER_LINES = [
    chat_line(),
    chat_line(usage=None),
    chat_line(usage={"prompt_tokens": 3}),
    chat_line(usage={"prompt_tokens": -1, "completion_tokens": 2, "total_tokens": 1}),
    chat_line(finish_reason=None),
    chat_line(content=""),
    chat_line(content=None),
    chat_line(content=[{"type": "text", "text": "parts"}]),
    chat_line(status_code=429),
    chat_line(error={"code": "batch_expired", "message": "Expired."}),
    {"custom_id": "c", "response": {"status_code": 200, "body": '{"choices": []}'}, "error": None},
    {"custom_id": "c", "response": {"status_code": 200, "body": {"output": [], "status": "completed"}}},
    {"custom_id": "c", "response": None, "error": None},
]


@pytest.mark.parametrize("line", ANSWER_LINES)
def test_reading_an_answer_gives_what_the_general_reader_gives(line: dict[str, Any]) -> None:
    read = read_answer(orjson.dumps(line))

    assert read is not None
    custom_id, outcome, columns, usage = read
    general_outcome, general_columns, general_usage = answer_of(line)
    assert custom_id == "c"
    assert orjson.loads(b"{" + columns) == orjson.loads(b"{" + general_columns)
    assert usage == general_usage
    assert (outcome is None) == (general_outcome is None)


REQUEST_LINES = [
    {"custom_id": "q", "body": {"messages": [{"role": "user", "content": "plain"}]}},
    {"custom_id": "q", "body": {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]}},
    {"custom_id": "q", "body": {"messages": [{"role": "system", "content": "only"}]}},
    {"custom_id": "q", "body": {"messages": ["not an object"]}},
    {"custom_id": "q", "body": {"input": "responses input"}},
    {"custom_id": "q", "body": "not an object"},
    {"custom_id": "q"},
]


@pytest.mark.parametrize("line", REQUEST_LINES)
def test_reading_a_request_gives_what_the_general_reader_gives(line: dict[str, Any]) -> None:
    assert read_request(orjson.dumps(line)) == ("q", question_of(line))


@pytest.mark.parametrize(
    "data",
    [b"", b"\n", b"not json", b"[1]", b'{"custom_id": 5}', b'{"custom_id": "\xff"}', b"\xef\xbb\xbf{}", b"{" * 5000],
)
def test_lines_that_are_not_requests_or_answers_read_as_none(data: bytes) -> None:
    assert read_request(data) is None
    assert read_answer(data) is None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200), st.from_regex(rb'\{"custom_id": ?"[a-z]{0,3}"[ -~\xc3\xa9]{0,80}\}?', fullmatch=True)
    )
)
def test_no_line_makes_a_reader_raise(data: bytes) -> None:
    read_request(data)
    read_answer(data)
