"""tally_usage: the tokens an output file reports, by model, cached ones apart."""

from __future__ import annotations

from pathlib import Path

from aoai_batch.cost import ModelUsage
from aoai_batch.results.usage_tally import tally_usage


def chat_line(custom_id: str, model: str | None, prompt: int, completion: int, cached: int | None = None) -> bytes:
    details = f', "prompt_tokens_details": {{"cached_tokens": {cached}}}' if cached is not None else ""
    named = f'"model": "{model}", ' if model else ""
    counts = f'"prompt_tokens": {prompt}, "completion_tokens": {completion}, "total_tokens": {prompt + completion}'
    usage = f"{{{counts}{details}}}"
    body = f'{{{named}"choices": [], "usage": {usage}}}'
    return (
        f'{{"custom_id": "{custom_id}", "response": {{"status_code": 200, "body": {body}}}, "error": null}}\n'.encode()
    )


def test_usage_is_tallied_by_model_with_cached_tokens_apart(tmp_path: Path) -> None:
    path = tmp_path / "output.jsonl"
    responses = (
        b'{"custom_id": "r", "response": {"status_code": 200, "body": {"model": "gpt-4o", "usage": '
        b'{"input_tokens": 7, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 2}}}}}\n'
    )
    path.write_bytes(
        chat_line("a", "gpt-4o-mini-2024-07-18", 100, 10, cached=40)
        + chat_line("b", "gpt-4o-mini-2024-07-18", 50, 5)
        + chat_line("c", None, 1, 1)
        + responses
        + b"not json\n"
        + b'{"custom_id": "d", "response": null, "error": {"code": "x"}}\n'
        + b'{"custom_id": "e", "response": {"status_code": 200, "body": "a string body"}}\n'
        + b'{"custom_id": "f", "response": {"status_code": 200, "body": {"usage": {"prompt_tokens": null}}}}\n'
    )

    tally = tally_usage(path)

    assert tally == {
        "gpt-4o-mini-2024-07-18": ModelUsage(prompt_tokens=150, cached_tokens=40, completion_tokens=15),
        None: ModelUsage(1, 0, 1),
        "gpt-4o": ModelUsage(prompt_tokens=7, cached_tokens=2, completion_tokens=3),
    }


def test_no_output_file_reports_no_usage() -> None:
    assert tally_usage(None) == {}
