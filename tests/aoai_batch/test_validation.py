"""validate_file: one fixture per issue code, the limits, the report's shape, and files that must not crash it."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoai_batch.errors import InvalidInput
from aoai_batch.models import ValidationIssue, ValidationReport
from aoai_batch.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, get_counter
from aoai_batch.validation import MAX_LISTED_ISSUES, Checker, Findings, Issue, check_file, validate_file
from tests.support.batch_files import write_lines
from tests.support.paths import VALIDATION_FIXTURES

LIMITS = {"max_requests": 100_000, "max_bytes": 200_000_000}
VALID_FILE_BYTES = (VALIDATION_FIXTURES / "valid.jsonl").stat().st_size
# Pieces that make the fuzzed files reach past the JSON parser into the request checks.
JSON_PIECES = [
    b"\n",
    b"\xef\xbb\xbf",
    b'{"custom_id": "a", "method": "POST", "url": "/responses", "body": {"model": "d", "input": "x"}}\n',
    b'{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {"model": "e", "messages": [{}]}}\n',
    b'{"custom_id": null, "url": "/embeddings", "body": {"model": "d", "input": [[1]]}}\n',
    b'{"body": {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}}\n',
    b'{"custom_id": "b", "method": "POST", "url": "/responses", '
    b'"body": {"model": "d", "input": [{"content": [{"type": []}]}]}}\n',
    b"[]\n",
]


def validate(path: Path, **overrides: object) -> ValidationReport:
    return validate_file(path, **{**LIMITS, **overrides})  # type: ignore[arg-type]


def request(custom_id: object = "task-0", **fields: object) -> dict[str, object]:
    line: dict[str, object] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]},
    }
    line.update(fields)
    return line


@pytest.mark.parametrize(
    ("fixture", "code", "line", "options"),
    [
        ("invalid_json_line.jsonl", "invalid_json_line", 2, {}),
        ("too_many_tasks.jsonl", "too_many_tasks", 3, {"max_requests": 2}),
        ("url_mismatch.jsonl", "url_mismatch", 3, {}),
        ("model_not_found.jsonl", "model_not_found", 1, {"deployments": ["gpt-4o-mini", "gpt-4o"]}),
        ("duplicate_custom_id.jsonl", "duplicate_custom_id", 3, {}),
        ("empty_file.jsonl", "empty_file", None, {}),
        ("model_mismatch.jsonl", "model_mismatch", 2, {}),
        ("invalid_request.jsonl", "invalid_request", 2, {}),
        ("file_too_large.jsonl", "file_too_large", None, {"max_bytes": VALID_FILE_BYTES - 1}),
        ("bom.jsonl", "bom", 1, {}),
        ("missing_custom_id.jsonl", "missing_custom_id", 2, {}),
        ("invalid_method.jsonl", "invalid_method", 3, {}),
        ("blank_line.jsonl", "blank_line", 2, {}),
    ],
)
def test_each_fixture_reports_its_issue_code_at_its_line(
    fixture: str, code: str, line: int | None, options: dict[str, object]
) -> None:
    report = validate(VALIDATION_FIXTURES / fixture, **options)

    assert not report.ok
    assert report.issue_counts == {code: 1}
    assert [(issue.code, issue.line) for issue in report.issues] == [(code, line)]


@pytest.mark.parametrize("fixture", ["valid.jsonl", "valid_responses.jsonl"])
def test_a_valid_file_has_no_issues_and_describes_itself(fixture: str) -> None:
    report = validate(VALIDATION_FIXTURES / fixture, deployments=["gpt-4o-mini", "gpt-4o"])

    assert report.ok
    assert report.issues == []
    assert report.issue_counts == {}
    assert report.bytes == (VALIDATION_FIXTURES / fixture).stat().st_size
    assert report.deployment in {"gpt-4o-mini", "gpt-4o"}
    assert report.url in {"/chat/completions", "/v1/responses"}
    assert report.estimated_input_tokens > 0
    assert report.tokens_exact


def test_valid_file_counts_its_requests_and_first_line_sets_deployment_and_url() -> None:
    report = validate(VALIDATION_FIXTURES / "valid.jsonl")

    assert (report.requests, report.deployment, report.url) == (3, "gpt-4o-mini", "/chat/completions")


@pytest.mark.parametrize(
    ("options", "ok"),
    [
        ({"max_requests": 3}, True),
        ({"max_requests": 2}, False),
        ({"max_bytes": VALID_FILE_BYTES}, True),
        ({"max_bytes": VALID_FILE_BYTES - 1}, False),
    ],
)
def test_limits_are_inclusive(options: dict[str, object], ok: bool) -> None:
    assert validate(VALIDATION_FIXTURES / "valid.jsonl", **options).ok is ok


BAD_REQUESTS: list[tuple[object, str]] = [
    ([1, 2], "invalid_request"),
    ("a string", "invalid_request"),
    (request(custom_id=7), "invalid_request"),
    (request(custom_id=""), "missing_custom_id"),
    (request(method=None), "invalid_request"),
    (request(method="post"), "invalid_method"),
    (request(url=None), "invalid_request"),
    (request(url=42), "invalid_request"),
    (request(url="/images/generations"), "url_mismatch"),
    (request(body=None), "invalid_request"),
    (request(body=[]), "invalid_request"),
    (request(body={"messages": [{"role": "user", "content": "Hi"}]}), "invalid_request"),
    (request(body={"model": 5, "messages": [{"role": "user", "content": "Hi"}]}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini"}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": []}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": "Hi"}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": ["Hi"]}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": [{"content": "Hi"}]}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": [{"role": ["user"], "content": "Hi"}]}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": [{"role": "user"}]}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 3}]}), "invalid_request"),
    (request(body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [3]}]}), "invalid_request"),
    (request(url="/responses", body={"model": "gpt-4o-mini", "messages": []}), "invalid_request"),
    (request(url="/responses", body={"model": "gpt-4o-mini", "input": []}), "invalid_request"),
    (request(url="/embeddings", body={"model": "gpt-4o-mini", "input": {}}), "invalid_request"),
    (request(url="/completions", body={"model": "gpt-4o-mini"}), "invalid_request"),
]


@pytest.mark.parametrize(("line", "code"), BAD_REQUESTS)
def test_a_malformed_request_is_reported_with_its_code(tmp_path: Path, line: object, code: str) -> None:
    report = validate(write_lines(tmp_path / "batch.jsonl", line))

    assert report.issue_counts == {code: 1}
    assert report.issues[0].line == 1


@pytest.mark.parametrize(
    "line",
    [
        request(body={"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": []}]}),
        request(url="/v1/chat/completions"),
        request(url="/embeddings", body={"model": "m", "input": ["a", "b"]}),
        request(url="/completions", body={"model": "m", "prompt": "Once"}),
        request(url="/responses", body={"model": "m", "input": "Hi", "instructions": "Be brief"}),
    ],
)
def test_accepted_request_shapes_have_no_issues(tmp_path: Path, line: dict[str, object]) -> None:
    assert validate(write_lines(tmp_path / "batch.jsonl", line)).ok


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n\n",
        b"   \n",
        b"\xef\xbb\xbf",
        b"\xff\xfe\x00\x01garbage\n",
        bytes(range(256)),
        b"\x00" * 1000,
        b'{"custom_id": "\xc3\x28"}\n',
        b'{"custom_id": "\\ud800"}\n',
        b"[" * 100_000 + b"]" * 100_000 + b"\n",
        b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"\n",
        b'{"custom_id": NaN}\n',
        b'{"custom_id": "x", "body": {"temperature": Infinity}}\n',
        b"1e999999\n",
        b'"\\u0000"\n',
        b"\r\n\r\n",
        b"{}" * 1000,
    ],
)
def test_arbitrary_bytes_become_issues_never_an_exception(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_bytes(content)

    report = validate(path)

    assert not report.ok
    assert report.bytes == len(content)
    assert sum(report.issue_counts.values()) >= len(report.issues) >= 1


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(tmp_path: Path, text: str) -> None:
    path = tmp_path / "batch.jsonl"
    line = orjson.dumps(
        request(body={"model": "m", "temperature": 0.5, "messages": [{"role": "user", "content": "x"}]})
    )
    path.write_bytes(line.replace(b"0.5", text.encode()) + b"\n")

    assert validate(path).issue_counts == {"invalid_json_line": 1}


def test_a_50_mb_single_line_is_checked_like_any_other(tmp_path: Path) -> None:
    big = "x" * 50_000_000
    path = write_lines(
        tmp_path / "big.jsonl", request(body={"model": "m", "messages": [{"role": "user", "content": big}]})
    )

    report = validate(path, count_tokens=False)

    assert report.ok
    assert report.requests == 1


def test_a_line_longer_than_the_line_limit_is_skipped_as_an_invalid_request(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "batch.jsonl", request("a"), request("b", padding="y" * 5000), request("c"))

    report = validate(path, max_line_bytes=1000)

    assert report.issue_counts == {"invalid_request": 1}
    assert report.issues[0].line == 2
    assert report.requests == 3
    assert report.bytes == path.stat().st_size


def test_only_the_first_fifty_issues_are_listed_but_all_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"not json\n" * 120)

    report = validate(path)

    assert len(report.issues) == MAX_LISTED_ISSUES
    assert report.issue_counts == {"invalid_json_line": 120}
    assert [issue.line for issue in report.issues] == list(range(1, MAX_LISTED_ISSUES + 1))


def test_a_bom_is_reported_and_the_first_line_still_checked(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(request(method="GET")) + b"\n")

    report = validate(path)

    assert [(issue.code, issue.line) for issue in report.issues] == [("bom", 1), ("invalid_method", 1)]


def test_every_duplicate_is_reported_at_its_later_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "batch.jsonl", request("a"), request("b"), request("a"), request("b"), request("a"))

    report = validate(path)

    assert [(issue.code, issue.line) for issue in report.issues] == [("duplicate_custom_id", n) for n in (3, 4, 5)]


def test_an_unknown_deployment_is_reported_once_per_name(tmp_path: Path) -> None:
    lines = [request(str(n)) for n in range(4)]
    report = validate(write_lines(tmp_path / "batch.jsonl", *lines), deployments=["gpt-4o"])

    assert report.issue_counts == {"model_not_found": 1}


def test_deployments_are_not_checked_when_none_are_given() -> None:
    assert validate(VALIDATION_FIXTURES / "model_not_found.jsonl").ok


def test_every_line_after_the_first_with_another_model_is_a_mismatch(tmp_path: Path) -> None:
    other = request(body={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    path = write_lines(tmp_path / "batch.jsonl", request("a"), {**other, "custom_id": "b"}, {**other, "custom_id": "c"})

    report = validate(path)

    assert [(issue.code, issue.line) for issue in report.issues] == [("model_mismatch", 2), ("model_mismatch", 3)]
    assert report.deployment == "gpt-4o-mini"


def test_token_estimate_is_the_sum_of_the_requests(tmp_path: Path) -> None:
    bodies = [{"model": "m", "messages": [{"role": "user", "content": f"Tell me about {n}"}]} for n in range(5)]
    report = validate(write_lines(tmp_path / "batch.jsonl", *(request(str(n), body=b) for n, b in enumerate(bodies))))

    count = get_counter().count
    expected = sum(
        TOKENS_PER_MESSAGE + count("user") + count(f"Tell me about {n}") + TOKENS_PER_REPLY for n in range(5)
    )
    assert report.estimated_input_tokens == expected
    assert report.tokens_exact


def test_tokens_are_not_counted_when_not_asked() -> None:
    report = validate(VALIDATION_FIXTURES / "valid.jsonl", count_tokens=False)

    assert (report.estimated_input_tokens, report.tokens_exact) == (0, False)


@pytest.mark.parametrize("make", [lambda p: p / "missing.jsonl", lambda p: p])
def test_a_path_that_cannot_be_read_is_invalid_input(tmp_path: Path, make: object) -> None:
    with pytest.raises(InvalidInput):
        validate(make(tmp_path))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [("/chat/completions", True), ("/v1/chat/completions", True), ("/responses", False), (None, True)],
)
def test_the_batch_endpoint_when_given_must_match_the_files_url(endpoint: str | None, ok: bool) -> None:
    report = validate(VALIDATION_FIXTURES / "valid.jsonl", endpoint=endpoint)

    assert report.ok is ok
    assert report.issue_counts == ({} if ok else {"url_mismatch": 1})


@settings(max_examples=200, deadline=None)
@given(content=st.lists(st.one_of(st.binary(max_size=80), st.sampled_from(JSON_PIECES)), max_size=12))
def test_no_file_content_makes_validation_fail_with_an_exception(content: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "any.jsonl"
        path.write_bytes(b"".join(content))

        report = validate(path, max_requests=5, max_bytes=400, deployments=["d"], endpoint="/responses")

    assert report.bytes == len(b"".join(content))
    assert report.ok is (not report.issue_counts)
    assert len(report.issues) == min(MAX_LISTED_ISSUES, sum(report.issue_counts.values()))


def test_whole_file_issues_are_listed_first_even_after_fifty_line_issues(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"not json\n" * 60)

    report = validate(path, max_requests=55, max_bytes=100)

    assert [issue.code for issue in report.issues[:2]] == ["too_many_tasks", "file_too_large"]
    assert report.issues[0].line == 56
    assert len(report.issues) == MAX_LISTED_ISSUES
    assert report.issue_counts == {"invalid_json_line": 60, "too_many_tasks": 1, "file_too_large": 1}


KEYS = [
    "custom_id",
    "method",
    "url",
    "body",
    "model",
    "messages",
    "input",
    "prompt",
    "instructions",
    "role",
    "content",
    "type",
    "text",
    "name",
    "image_url",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "POST",
            "/chat/completions",
            "/responses",
            "/v1/embeddings",
            "/completions",
            "user",
            "text",
            "image_url",
            "input_text",
            "d",
        ]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6) | json_values, max_size=6))
def test_no_json_shape_makes_validation_fail_with_an_exception(lines: list[object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "any.jsonl"
        path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))

        report = validate(path, deployments=["d"])

    assert report.requests == len(lines)
    assert report.ok is (not report.issue_counts)


# The file pass accepts the common line inline; the builder's `check_object` always takes the full check.
# Both must find the same: each line below differs from a plain repeat of the first in one way.
PLAIN = request("first")
NEAR_REPEATS = [
    request("a"),
    request("a"),
    request("b", method="GET"),
    request("c", url="/responses"),
    request("d", body={"model": "other", "messages": [{"role": "user", "content": "Hi"}]}),
    request("e", body={"model": "gpt-4o-mini", "messages": []}),
    request("f", body={"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "Hi"}]}),
    request("g", body={"model": "gpt-4o-mini", "messages": [{"role": ["user"], "content": "Hi"}]}),
    request("h", body={"model": "gpt-4o-mini", "messages": ["Hi"]}),
    request("i", body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
    request("n", body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 5}]}),
    request("o", body={"model": "gpt-4o-mini", "messages": [{"role": "user"}]}),
    request("j", body={"model": None, "messages": [{"role": "user", "content": "Hi"}]}),
    request("k", body=[]),
    request(""),
    request(7),
    {"custom_id": "l", "method": "POST", "url": "/chat/completions"},
    ["not", "an", "object"],
    request("m"),
    request("m"),  # past a limit of 3, ids are no longer kept: then not reported as a duplicate
]


@pytest.mark.parametrize(("max_requests", "duplicates"), [(100_000, 2), (3, 1)])
def test_the_inline_path_finds_what_the_full_check_finds(tmp_path: Path, max_requests: int, duplicates: int) -> None:
    lines = [PLAIN, *NEAR_REPEATS]
    path = write_lines(tmp_path / "near.jsonl", *lines)
    checker = Checker(max_requests, ["gpt-4o-mini"], True, sample_every=1)
    for number, line in enumerate(lines, start=1):
        checker.check_object(number, line)

    by_file = validate(path, max_requests=max_requests, deployments=["gpt-4o-mini"])

    assert by_file == checker.report(path, path.stat().st_size, LIMITS["max_bytes"])
    assert by_file.issue_counts["duplicate_custom_id"] == duplicates
    assert len(by_file.issues) == sum(by_file.issue_counts.values())


def test_findings_have_the_fields_of_the_report_in_its_order() -> None:
    assert [field.name for field in dataclasses.fields(Findings)] == list(ValidationReport.model_fields)
    assert [field.name for field in dataclasses.fields(Issue)] == list(ValidationIssue.model_fields)


@pytest.mark.parametrize("fixture", sorted(path.name for path in VALIDATION_FIXTURES.glob("*.jsonl")))
def test_findings_are_the_report(fixture: str) -> None:
    findings = check_file(VALIDATION_FIXTURES / fixture, **LIMITS, deployments=["gpt-4o"])  # type: ignore[arg-type]

    assert findings.as_dict() == validate(VALIDATION_FIXTURES / fixture, deployments=["gpt-4o"]).model_dump()


def test_approximate_tokens_are_characters_over_four_and_flagged(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "batch.jsonl", request("a"), request("b"))

    report = validate(path, exact_tokens=False)

    assert report.ok
    assert report.tokens_exact is False
    framing = 2 * (TOKENS_PER_MESSAGE + TOKENS_PER_REPLY)
    assert report.estimated_input_tokens == framing + 2 * (len("user") // 4 + -(-len("Hello") // 4))


def test_lines_that_are_not_json_count_as_requests_between_plain_ones(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    plain = [orjson.dumps(request(f"task-{n}")) + b"\n" for n in range(4)]
    path.write_bytes(plain[0] + b"not json\n" + b"".join(plain[1:]) + b"\n")

    report = validate(path, max_requests=3)

    assert report.requests == 5
    assert [(issue.code, issue.line) for issue in report.issues] == [
        ("too_many_tasks", 4),
        ("invalid_json_line", 2),
        ("blank_line", 6),
    ]


@pytest.mark.parametrize(
    ("bodies", "bound"),
    [
        ([{"max_tokens": 10}, {"max_completion_tokens": 30}], 40),
        ([{"max_tokens": 10}, {}], None),
        ([{"max_tokens": 10}, {"max_tokens": 0}], None),
        ([{"max_tokens": 10}, {"max_tokens": "5"}], None),
    ],
)
def test_the_output_bound_is_the_sum_of_every_lines_limit(
    tmp_path: Path, bodies: list[dict[str, object]], bound: int | None
) -> None:
    lines = [
        request(f"t{i}", body={"model": "m", "messages": [{"role": "user", "content": "x"}], **body})
        for i, body in enumerate(bodies)
    ]
    path = write_lines(tmp_path / "b.jsonl", *lines)

    assert validate(path).max_output_tokens == bound


def test_a_responses_file_is_bounded_by_max_output_tokens(tmp_path: Path) -> None:
    lines = [
        request(f"t{i}", url="/responses", body={"model": "m", "input": "x", "max_output_tokens": 7}) for i in range(3)
    ]
    path = write_lines(tmp_path / "r.jsonl", *lines)

    report = validate(path)

    assert report.ok
    assert report.max_output_tokens == 21


def test_without_counting_tokens_there_is_no_output_bound(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "b.jsonl",
        request(body={"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}),
    )
    assert validate(path, count_tokens=False).max_output_tokens is None
    assert validate(path).estimated_cost is None  # priced only by whoever knows the deployment's model
