"""build_batch_file: every input form, templates, images, splitting, and nothing written on bad input."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from aoai_batch.builder import build_batch_file
from aoai_batch.errors import InvalidInput, UnknownDeployment
from aoai_batch.models import BuildResult
from aoai_batch.validation import validate_file

LIMITS = {"max_requests": 100_000, "max_bytes": 200_000_000}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def build(tmp_path: Path, **options: Any) -> BuildResult:
    options.setdefault("deployment", "gpt-4o-mini")
    options.setdefault("output_path", tmp_path / "out" / "batch.jsonl")
    return build_batch_file(**{**LIMITS, **options})


def lines_of(path: str | Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_prompts_become_chat_requests_with_generated_ids(tmp_path: Path) -> None:
    result = build(tmp_path, prompts=["One?", "Two?"], system_prompt="Be brief.", body={"max_tokens": 50})

    lines = lines_of(result.files[0].path)
    assert [line["custom_id"] for line in lines] == ["request-1", "request-2"]
    assert lines[0] == {
        "custom_id": "request-1",
        "method": "POST",
        "url": "/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "max_tokens": 50,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "One?"}],
        },
    }
    assert (result.requests, result.split, result.tokens_exact) == (2, False, True)
    assert result.estimated_input_tokens == result.validation[0].estimated_input_tokens > 0


def test_prompts_for_responses_use_input_and_instructions(tmp_path: Path) -> None:
    result = build(tmp_path, prompts=["Hi"], endpoint="/responses", system_prompt="Be brief.")

    [line] = lines_of(result.files[0].path)
    assert line["url"] == "/responses"
    assert line["body"] == {"model": "gpt-4o-mini", "input": "Hi", "instructions": "Be brief."}


def test_request_objects_keep_their_ids_messages_and_fields(tmp_path: Path) -> None:
    requests = [
        {"custom_id": "a", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0},
        {"prompt": "Hello", "max_tokens": 5},
    ]
    result = build(tmp_path, requests=requests, body={"max_tokens": 100, "temperature": 1})

    first, second = lines_of(result.files[0].path)
    assert first["custom_id"] == "a"
    assert first["body"] == {
        "model": "gpt-4o-mini",
        "max_tokens": 100,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert second["custom_id"] == "request-2"
    assert second["body"]["max_tokens"] == 5
    assert second["body"]["messages"] == [{"role": "user", "content": "Hello"}]


SOURCES = [
    ("rows.csv", 'id,city,topic\nx1,Paris,food\nx2,Oslo,"art, music"\n'),
    (
        "rows.jsonl",
        '{"id": "x1", "city": "Paris", "topic": "food"}\n\n{"id": "x2", "city": "Oslo", "topic": "art, music"}\n',
    ),
    (
        "rows.json",
        '[{"id": "x1", "city": "Paris", "topic": "food"}, {"id": "x2", "city": "Oslo", "topic": "art, music"}]',
    ),
    (
        "rows.txt",
        '[{"id": "x1", "city": "Paris", "topic": "food"}, {"id": "x2", "city": "Oslo", "topic": "art, music"}]',
    ),
    ("rows.data", 'id,city,topic\nx1,Paris,food\nx2,Oslo,"art, music"\n'),
]


@pytest.mark.parametrize(("name", "content"), SOURCES)
def test_source_rows_fill_the_template(tmp_path: Path, name: str, content: str) -> None:
    source = write(tmp_path / name, content)

    result = build(tmp_path, source_path=source, template="{topic} in {city}? {{brief}}", id_field="id")

    lines = lines_of(result.files[0].path)
    assert [line["custom_id"] for line in lines] == ["x1", "x2"]
    assert [line["body"]["messages"][-1]["content"] for line in lines] == [
        "food in Paris? {brief}",
        "art, music in Oslo? {brief}",
    ]


def test_a_csv_with_a_bom_and_a_single_column_needs_no_template(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(b"\xef\xbb\xbfquestion\nWhy?\nHow?\n")

    result = build(tmp_path, source_path=source)

    assert [line["body"]["messages"][0]["content"] for line in lines_of(result.files[0].path)] == ["Why?", "How?"]


def test_template_values_that_are_not_text_are_written_as_json(tmp_path: Path) -> None:
    source = write(tmp_path / "rows.jsonl", '{"n": 3, "ok": true, "tags": ["a"]}\n')

    result = build(tmp_path, source_path=source, template="{n} {ok} {tags}")

    assert lines_of(result.files[0].path)[0]["body"]["messages"][0]["content"] == '3 true ["a"]'


def test_templates_substitute_columns_only_and_never_evaluate(tmp_path: Path) -> None:
    source = write(tmp_path / "rows.json", '[{"a.b": "dotted", "x": "{y}", "y": "no", "z": [1]}]')

    result = build(tmp_path, source_path=source, template="{a.b} {x}")

    assert lines_of(result.files[0].path)[0]["body"]["messages"][0]["content"] == "dotted {y}"


@pytest.mark.parametrize("template", ["{z[0]}", "{x.upper}", "{x!r}", "{x:>10}", "{__class__}"])
def test_templates_have_no_index_attribute_or_format_access(tmp_path: Path, template: str) -> None:
    source = write(tmp_path / "rows.json", '[{"x": "text", "z": [1]}]')

    with pytest.raises(InvalidInput):
        build(tmp_path, source_path=source, template=template)


def test_local_images_become_data_urls_and_urls_are_kept(tmp_path: Path) -> None:
    (tmp_path / "pic.png").write_bytes(PNG)
    source = write(
        tmp_path / "rows.csv", "text,image\nWhat is this?,pic.png\nAnd this?,https://example.com/a.jpg\nNone,\n"
    )

    result = build(tmp_path, source_path=source, template="{text}", image_field="image")

    first, second, third = (line["body"]["messages"][0]["content"] for line in lines_of(result.files[0].path))
    assert first == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
    ]
    assert second[1] == {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}
    assert third == "None"
    assert not result.tokens_exact


def test_images_for_responses_are_input_images(tmp_path: Path) -> None:
    result = build(
        tmp_path,
        requests=[{"prompt": "What?", "img": "https://example.com/a.png"}],
        image_field="img",
        endpoint="/responses",
    )

    [line] = lines_of(result.files[0].path)
    assert line["body"]["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What?"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
            ],
        }
    ]


def test_the_image_resolver_can_refuse_a_path(tmp_path: Path) -> None:
    def refuse(value: str) -> Path:
        raise InvalidInput(f"{value} is outside the workspace")

    with pytest.raises(InvalidInput):
        build(tmp_path, requests=[{"prompt": "What?", "img": "../secret.png"}], image_field="img", resolve_image=refuse)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("max_requests", "max_bytes", "expected_counts"),
    [
        (2, 10_000_000, [2, 2, 1]),
        (100, 3 * 150, None),  # by bytes: three lines of at most 150 bytes each per file
        (5, 10_000_000, [5]),
    ],
)
def test_output_is_split_by_count_and_bytes(
    tmp_path: Path, max_requests: int, max_bytes: int, expected_counts: list[int] | None
) -> None:
    result = build(tmp_path, prompts=[f"Prompt {n}" for n in range(5)], max_requests=max_requests, max_bytes=max_bytes)

    counts = [file.requests for file in result.files]
    assert sum(counts) == result.requests == 5
    if expected_counts is not None:
        assert counts == expected_counts
    assert result.split is (len(result.files) > 1)
    for file in result.files:
        assert Path(file.path).stat().st_size == file.bytes <= max_bytes
        assert file.requests <= max_requests
        assert validate_file(Path(file.path), max_requests=max_requests, max_bytes=max_bytes).ok
    if result.split:
        assert [Path(file.path).name for file in result.files] == [
            f"batch-{n:03d}.jsonl" for n in range(1, len(result.files) + 1)
        ]
    all_ids = [line["custom_id"] for file in result.files for line in lines_of(file.path)]
    assert all_ids == [f"request-{n}" for n in range(1, 6)]


def test_an_existing_output_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    output = tmp_path / "batch.jsonl"
    output.write_text("keep me")

    with pytest.raises(InvalidInput):
        build(tmp_path, prompts=["Hi"], output_path=output)
    assert output.read_text() == "keep me"

    build(tmp_path, prompts=["Hi"], output_path=output, overwrite=True)
    assert lines_of(output)[0]["custom_id"] == "request-1"


def test_an_existing_split_part_stops_the_build_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "batch-002.jsonl").write_text("keep me")

    with pytest.raises(InvalidInput):
        build(tmp_path, prompts=["a", "b", "c"], output_path=tmp_path / "batch.jsonl", max_requests=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["batch-002.jsonl"]


BAD_INPUTS: list[dict[str, Any]] = [
    {},
    {"prompts": ["a"], "requests": [{"prompt": "b"}]},
    {"prompts": []},
    {"prompts": ["a"], "deployment": " "},
    {"prompts": ["a"], "endpoint": "/embeddings"},
    {"prompts": ["a"], "body": {"model": "other"}},
    {"prompts": ["a"], "body": {"messages": []}},
    {"prompts": ["a", 3]},
    {"requests": []},
    {"requests": ["text"]},
    {"requests": [{"custom_id": "x"}]},
    {"requests": [{"prompt": "a", "messages": [{"role": "user", "content": "b"}]}]},
    {"requests": [{"messages": []}]},
    {"requests": [{"messages": "hi"}]},
    {"requests": [{"messages": [{"role": "user", "content": 5}]}]},
    {"requests": [{"prompt": "a", "model": "x"}]},
    {"requests": [{"custom_id": "same", "prompt": "a"}, {"custom_id": "same", "prompt": "b"}]},
    {"requests": [{"custom_id": "", "prompt": "a"}]},
    {"requests": [{"prompt": "x" * 500}], "max_bytes": 100},
    {"prompts": ["a"], "template": "{unclosed"},
    {"prompts": ["a"], "template": "lone } brace"},
    {"prompts": ["a"], "template": "{}"},
    {"prompts": ["a"], "template": "{missing}"},
    {"prompts": ["lone \ud800 surrogate"]},
    {"prompts": "one string"},
    {"requests": {"prompt": "a mapping, not a list"}},
    {"prompts": ["a"], "body": {"stop": {1, 2}}},
]


@pytest.mark.parametrize("options", BAD_INPUTS)
def test_bad_input_is_an_error_and_nothing_is_written(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        build(tmp_path, **options)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


BAD_SOURCES = [
    ("empty.csv", "", {}),
    ("header-only.csv", "a,b\n", {"template": "{a}"}),
    ("short-row.csv", "a,b\n1\n", {"template": "{a} {b}"}),
    ("rows.csv", "a,b\n1,2\n", {}),
    ("rows.csv", "a,b\n1,2\n", {"template": "{c}"}),
    ("rows.csv", "a,b\n1,2\n", {"template": "{a}", "id_field": "c"}),
    ("rows.csv", "a,b\n1,2\n1,3\n", {"template": "{b}", "id_field": "a"}),
    ("rows.jsonl", '{"a": 1}\nnot json\n', {"template": "{a}"}),
    ("rows.jsonl", "[1]\n", {"template": "{a}"}),
    ("rows.json", '{"a": 1}', {"template": "{a}"}),
    ("rows.json", "[1, 2]", {"template": "{a}"}),
    ("rows.json", "[", {"template": "{a}"}),
    ("rows.json", "[]", {"template": "{a}"}),
    ("rows.csv", "a,image\nx,missing.png\n", {"template": "{a}", "image_field": "image"}),
    ("rows.csv", "a,image\nx,notes.txt\n", {"template": "{a}", "image_field": "image"}),
]


@pytest.mark.parametrize(("name", "content", "options"), BAD_SOURCES)
def test_a_bad_source_is_an_error_and_nothing_is_written(
    tmp_path: Path, name: str, content: str, options: dict[str, Any]
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    source = write(tmp_path / name, content)

    with pytest.raises(InvalidInput):
        build(tmp_path, source_path=source, **options)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_source_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(b"a\n\xff\xfe\n")

    with pytest.raises(InvalidInput):
        build(tmp_path, source_path=source)


def test_a_missing_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        build(tmp_path, source_path=tmp_path / "nope.csv")


def test_the_error_for_a_missing_column_names_the_row_and_the_column(tmp_path: Path) -> None:
    source = write(tmp_path / "rows.csv", "a,b\n1,2\n3\n")

    with pytest.raises(InvalidInput) as caught:
        build(tmp_path, source_path=source, template="{a} {b}")

    assert "2" in str(caught.value)
    assert "'b'" in str(caught.value)


def test_jsonl_rows_shaped_like_requests_keep_their_messages(tmp_path: Path) -> None:
    row = {"custom_id": "r1", "messages": [{"role": "user", "content": "Hi"}]}
    source = write(tmp_path / "rows.jsonl", json.dumps(row) + "\n")

    result = build(tmp_path, source_path=source, system_prompt="Be brief.")

    [line] = lines_of(result.files[0].path)
    assert line["custom_id"] == "r1"
    assert line["body"]["messages"] == [{"role": "system", "content": "Be brief."}, *row["messages"]]


def test_a_template_wraps_each_prompt(tmp_path: Path) -> None:
    result = build(tmp_path, prompts=["cats", "dogs"], template="Write a haiku about {prompt}.")

    contents = [line["body"]["messages"][0]["content"] for line in lines_of(result.files[0].path)]
    assert contents == ["Write a haiku about cats.", "Write a haiku about dogs."]


def test_an_unknown_deployment_is_refused_before_the_source_is_read(tmp_path: Path) -> None:
    with pytest.raises(UnknownDeployment) as refused:
        build(tmp_path, deployment="gpt-5", source_path=tmp_path / "missing.csv", deployments=["gpt-4o-mini", "gpt-4o"])
    assert refused.value.known == ["gpt-4o", "gpt-4o-mini"]
    assert not (tmp_path / "out").exists()


def test_a_known_deployment_is_reported_as_checked_and_none_given_as_not_checked(tmp_path: Path) -> None:
    checked = build(tmp_path, prompts=["a"], deployments=["gpt-4o-mini"])
    unchecked = build(tmp_path, prompts=["a"], output_path=tmp_path / "other.jsonl")
    assert [report.deployment_checked for report in checked.validation + unchecked.validation] == [True, False]


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ('{{"answer": "{prompt}"}}', '{"answer": "Paris"}'),
        ("{{{prompt}}}", "{Paris}"),
        ("{{prompt}}", "{prompt}"),
        ("a }} b {{", "a } b {"),
    ],
)
def test_doubled_braces_are_literal_braces(tmp_path: Path, template: str, text: str) -> None:
    result = build(tmp_path, prompts=["Paris"], template=template)
    assert lines_of(result.files[0].path)[0]["body"]["messages"][0]["content"] == text


@pytest.mark.parametrize("template", ['Reply as {"a": 1}: {prompt}', "Reply as {'a': 1}", 'Nested {"a": {"b": 1}}'])
def test_single_braces_of_a_json_example_are_refused_saying_to_double_them(tmp_path: Path, template: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        build(tmp_path, prompts=["Paris"], template=template)
    assert "{{" in str(refused.value)
    assert not (tmp_path / "out").exists()
