"""Property: whatever build_batch_file writes passes the validator, within the limits, every request once."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any, Literal

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aoai_batch.builder import build_batch_file
from aoai_batch.errors import InvalidInput
from aoai_batch.validation import validate_file

# Text as people and files give it: any Unicode scalar (no lone surrogates, which no UTF-8 file holds).
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
text = st.text(st.characters(exclude_categories=SURROGATES), max_size=60)
ids = st.text(st.characters(exclude_categories=SURROGATES), min_size=1, max_size=12).filter(str.strip)
body_defaults = st.fixed_dictionaries(
    {},
    optional={
        "max_tokens": st.integers(1, 4000),
        "temperature": st.floats(0, 2, allow_nan=False),
        "response_format": st.just({"type": "json_object"}),
        "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    },
)
options = st.fixed_dictionaries(
    {
        "deployment": ids,
        "endpoint": st.sampled_from(["/chat/completions", "/responses"]),
        "body": body_defaults,
        "max_requests": st.integers(1, 7),
        "max_bytes": st.integers(2_000, 20_000),
    },
    optional={"system_prompt": text},
)


def check_output(result_files: list[str], count: int, max_requests: int, max_bytes: int) -> list[str]:
    seen: list[str] = []
    for name in result_files:
        report = validate_file(Path(name), max_requests=max_requests, max_bytes=max_bytes)
        assert report.ok, report.issues
        assert 1 <= report.requests <= max_requests
        assert report.bytes <= max_bytes
        seen += [orjson.loads(line)["custom_id"] for line in Path(name).read_bytes().splitlines()]
    assert len(seen) == len(set(seen)) == count
    return seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompts=st.lists(text, min_size=1, max_size=20), opts=options)
def test_built_prompts_always_validate(prompts: list[str], opts: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = build_batch_file(prompts=prompts, output_path=Path(tmp) / "batch.jsonl", **opts)

        check_output([f.path for f in result.files], len(prompts), opts["max_requests"], opts["max_bytes"])
        assert result.requests == len(prompts)


rows = st.lists(st.fixed_dictionaries({"id": ids, "text": text, "extra": text}), min_size=1, max_size=15).filter(
    lambda found: len({row["id"] for row in found}) == len(found)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(found=rows, opts=options, template=st.sampled_from(["{text}", "Q: {text} ({extra}) {{x}}", "{id}: {text}"]))
def test_built_csv_rows_always_validate(found: list[dict[str, str]], opts: dict[str, Any], template: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "rows.csv"
        with open(source, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "text", "extra"])
            writer.writeheader()
            writer.writerows(found)
        result = build_batch_file(
            source_path=source, template=template, id_field="id", output_path=Path(tmp) / "out.jsonl", **opts
        )

        assert check_output([f.path for f in result.files], len(found), opts["max_requests"], opts["max_bytes"])


requests = st.lists(
    st.one_of(
        st.fixed_dictionaries({"prompt": text}, optional={"max_tokens": st.integers(1, 100)}),
        st.fixed_dictionaries(
            {
                "messages": st.lists(
                    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": text}),
                    min_size=1,
                    max_size=3,
                )
            }
        ),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(found=requests, opts=options)
def test_built_request_objects_always_validate(found: list[dict[str, Any]], opts: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = build_batch_file(requests=found, output_path=Path(tmp) / "batch.jsonl", **opts)

        check_output([f.path for f in result.files], len(found), opts["max_requests"], opts["max_bytes"])


KEYS = ["custom_id", "messages", "prompt", "temperature", "role", "content", "type", "text", "img", "model", "input"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text | st.sampled_from(["user", "system", "text"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    found=st.lists(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5), min_size=1, max_size=6),
    body=st.dictionaries(st.sampled_from([*KEYS, "max_tokens"]), json_values, max_size=3),
    endpoint=st.sampled_from(["/chat/completions", "/responses"]),
)
def test_any_request_objects_give_valid_files_or_a_clear_refusal(
    found: list[dict[str, Any]], body: dict[str, Any], endpoint: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "out"
        try:
            result = build_batch_file(
                deployment="d",
                requests=found,
                body=body,
                endpoint=endpoint,
                image_field="img",
                output_path=folder / "batch.jsonl",
                max_requests=3,
                max_bytes=100_000,
                resolve_image=lambda value: Path(tmp) / "no-images-here" / value,
            )
        except InvalidInput:
            assert not folder.exists() or not any(folder.iterdir())
            return
        check_output([f.path for f in result.files], len(found), 3, 100_000)
