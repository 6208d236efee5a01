"""The join of input, output and error files, on real files in tmp_path."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aoai_batch import results
from aoai_batch.errors import InvalidInput
from aoai_batch.models import Batch, BatchError, BatchStatus, FetchSummary, RequestCounts
from aoai_batch.result_lines import answer_of, outcome_of
from aoai_batch.result_summary import not_run_summary, plan_paths, summarize
from aoai_batch.results import Joined, join_results
from aoai_batch.validation import validate_file


def request(custom_id: str, question: str = "What is 2+2?", url: str = "/chat/completions") -> dict[str, Any]:
    if url == "/responses":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "input": [{"role": "user", "content": question}]}
    else:
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}],
        }
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def chat_answer(custom_id: str, content: str = "4", finish_reason: str = "stop") -> dict[str, Any]:
    """An output line in Azure's shape (seed 003), content filter results and all."""
    return {
        "custom_id": custom_id,
        "response": {
            "body": {
                "choices": [
                    {
                        "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
                        "finish_reason": finish_reason,
                        "index": 0,
                        "logprobs": None,
                        "message": {"content": content, "role": "assistant"},
                    }
                ],
                "created": 1722477079,
                "id": "chatcmpl-1",
                "model": "gpt-4o-mini-2024-07-18",
                "object": "chat.completion",
                "usage": {"completion_tokens": 5, "prompt_tokens": 20, "total_tokens": 25},
            },
            "request_id": f"req-{custom_id}",
            "status_code": 200,
        },
        "error": None,
    }


def responses_answer(custom_id: str, text: str = "4") -> dict[str, Any]:
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]},
        ],
        "usage": {"input_tokens": 11, "output_tokens": 3, "total_tokens": 14},
    }
    return {"custom_id": custom_id, "response": {"status_code": 200, "request_id": "r", "body": body}, "error": None}


def error_line(custom_id: str, code: str = "content_filter", message: str = "Filtered.") -> dict[str, Any]:
    """An error file line as Azure writes it: a 4xx response whose body is an error."""
    body = {"error": {"code": code, "message": message}}
    return {"custom_id": custom_id, "response": {"status_code": 400, "request_id": "r", "body": body}, "error": None}


def openai_error_line(custom_id: str, code: str = "batch_expired", message: str = "Expired.") -> dict[str, Any]:
    """An error line as OpenAI writes it: no response, an error object."""
    return {"id": "batch_req_1", "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def join(tmp_path: Path, inputs: list[Any], outputs: list[Any] | None, errors: list[Any] | None, **kw: Any) -> Joined:
    input_path = write_jsonl(tmp_path / "input.jsonl", inputs)
    output_path = write_jsonl(tmp_path / "output.jsonl", outputs) if outputs is not None else None
    error_path = write_jsonl(tmp_path / "error.jsonl", errors) if errors is not None else None
    kw.setdefault("results_path", tmp_path / "out" / "results.jsonl")
    kw.setdefault("retry_path", tmp_path / "out" / "retry.jsonl")
    return join_results(input_path, output_path=output_path, error_path=error_path, **kw)


def assert_valid_batch_file(path: Path) -> None:
    report = validate_file(path, max_requests=100_000, max_bytes=200_000_000, count_tokens=False)
    assert report.ok, report.issues


IDS = [f"task-{n}" for n in range(6)]


def test_a_completed_batch_gives_one_succeeded_row_per_request_in_input_order(tmp_path: Path) -> None:
    outputs = [chat_answer(cid, content=f"answer {cid}") for cid in reversed(IDS)]

    joined = join(tmp_path, [request(cid, f"question {cid}") for cid in IDS], outputs, [])

    rows = read_jsonl(joined.results_path)
    assert [row["custom_id"] for row in rows] == IDS
    assert {row["status"] for row in rows} == {"succeeded"}
    assert rows[2]["input"] == "question task-2"
    assert rows[2]["content"] == "answer task-2"
    assert rows[2]["finish_reason"] == "stop"
    assert rows[2]["usage"] == {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
    assert rows[2]["error"] is None
    assert joined.counts.model_dump() == {"succeeded": 6, "failed": 0, "missing": 0}
    assert joined.usage.model_dump() == {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    assert joined.retry_path is None
    assert not (tmp_path / "out" / "retry.jsonl").exists()


def test_failed_requests_carry_their_error_and_go_to_a_valid_retry_file(tmp_path: Path) -> None:
    inputs = [request(cid) for cid in IDS]
    outputs = [chat_answer(cid) for cid in IDS[:4]]
    errors = [error_line("task-4", "content_filter"), openai_error_line("task-5", "token_limit_exceeded")]

    joined = join(tmp_path, inputs, outputs, errors)

    rows = read_jsonl(joined.results_path)
    assert [row["status"] for row in rows] == ["succeeded"] * 4 + ["failed"] * 2
    assert rows[4]["error"] == {"code": "content_filter", "message": "Filtered."}
    assert rows[5]["error"]["code"] == "token_limit_exceeded"
    assert rows[4]["content"] is None
    assert joined.failures_by_code == {"content_filter": 1, "token_limit_exceeded": 1}
    assert joined.failed_ids == ["task-4", "task-5"]
    assert joined.retry_path is not None
    assert read_jsonl(joined.retry_path) == inputs[4:]
    assert_valid_batch_file(joined.retry_path)


def test_an_all_failed_batch_without_output_file_is_joined_from_the_error_file_alone(tmp_path: Path) -> None:
    errors = [error_line(cid, "model_overloaded") for cid in IDS]

    joined = join(tmp_path, [request(cid) for cid in IDS], None, errors)
    summary = summarize(
        joined, batch_id="batch_1", batch_status="completed", format="jsonl", errors_path=None, had_output_file=False
    )

    assert summary.counts.model_dump() == {"succeeded": 0, "failed": 6, "missing": 0}
    assert summary.failures_by_code == {"model_overloaded": 6}
    assert summary.usage.total_tokens == 0
    assert summary.note
    assert summary.retry_path is not None
    assert len(read_jsonl(Path(summary.retry_path))) == 6


@pytest.mark.parametrize("status", ["cancelled", "expired"])
def test_a_cancelled_or_expired_batch_marks_the_requests_that_never_ran_missing(
    tmp_path: Path, status: BatchStatus
) -> None:
    inputs = [request(cid) for cid in IDS]
    joined = join(tmp_path, inputs, [chat_answer("task-0"), chat_answer("task-3")], [error_line("task-1")])
    summary = summarize(
        joined, batch_id="batch_1", batch_status=status, format="jsonl", errors_path=None, had_output_file=True
    )

    rows = read_jsonl(joined.results_path)
    assert [row["status"] for row in rows] == ["succeeded", "failed", "missing", "succeeded", "missing", "missing"]
    assert summary.counts.model_dump() == {"succeeded": 2, "failed": 1, "missing": 3}
    assert summary.failed_ids == ["task-1", "task-2", "task-4", "task-5"]
    assert summary.note is not None
    assert summary.retry_path is not None
    assert read_jsonl(Path(summary.retry_path)) == [inputs[i] for i in (1, 2, 4, 5)]
    assert_valid_batch_file(Path(summary.retry_path))


def test_a_batch_that_failed_validation_reports_that_no_request_ran() -> None:
    batch = Batch(
        id="batch_1",
        status="failed",
        terminal=True,
        request_counts=RequestCounts(total=7),
        errors=[BatchError(code="model_not_found", message="No deployment gpt-5.", line=1)],
        backend="emulator",
    )

    summary = not_run_summary(batch, "csv")

    assert isinstance(summary, FetchSummary)
    assert summary.results_path is None
    assert summary.retry_path is None
    assert summary.counts.missing == 7
    assert summary.failures_by_code == {"model_not_found": 1}
    assert summary.note is not None


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        (b"{not json", "unparsable_lines"),
        (b'{"response": {"status_code": 200}}', "unparsable_lines"),
        (b"[1, 2]", "unparsable_lines"),
        (b'{"custom_id": 7}', "unparsable_lines"),
        (b"\xff\xfe\x00garbage", "unparsable_lines"),
        (orjson.dumps(chat_answer("not-in-input")), "unmatched_lines"),
        (orjson.dumps(chat_answer("task-0", content="again")), "duplicate_lines"),
    ],
)
def test_output_lines_that_cannot_be_joined_are_counted_not_dropped_silently(
    tmp_path: Path, bad_line: bytes, field: str
) -> None:
    output = tmp_path / "output.jsonl"
    output.write_bytes(orjson.dumps(chat_answer("task-0")) + b"\n" + bad_line + b"\n\n")
    input_path = write_jsonl(tmp_path / "input.jsonl", [request("task-0"), request("task-1")])

    joined = join_results(
        input_path,
        output_path=output,
        error_path=None,
        results_path=tmp_path / "results.jsonl",
        retry_path=tmp_path / "retry.jsonl",
    )

    counted = {"unparsable_lines": 0, "unmatched_lines": 0, "duplicate_lines": 0}
    counted[field] = 1
    assert {name: getattr(joined, name) for name in counted} == counted
    assert read_jsonl(joined.results_path)[0]["content"] == "4"
    summary = summarize(
        joined, batch_id="b", batch_status="completed", format="jsonl", errors_path=None, had_output_file=True
    )
    assert summary.note is not None
    assert getattr(summary, field) == 1


def test_an_answer_beats_an_error_for_the_same_request(tmp_path: Path) -> None:
    joined = join(tmp_path, [request("task-0")], [chat_answer("task-0")], [error_line("task-0")])

    assert joined.counts.succeeded == 1
    assert joined.duplicate_lines == 1
    assert joined.retry_path is None


def test_csv_results_quote_commas_quotes_newlines_and_unicode(tmp_path: Path) -> None:
    tricky = 'He said, "hi"\nthen left; 日本語 — =1+1'
    joined = join(
        tmp_path,
        [request("a", tricky), request("b")],
        [chat_answer("a", content=tricky)],
        [error_line("b", "bad", 'message, with "quotes"')],
        format="csv",
        results_path=tmp_path / "results.csv",
    )

    with joined.results_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["custom_id"] for row in rows] == ["a", "b"]
    assert rows[0]["input"] == tricky
    assert rows[0]["content"] == tricky
    assert rows[0]["total_tokens"] == "25"
    assert rows[1]["status"] == "failed"
    assert rows[1]["error_message"] == 'message, with "quotes"'
    assert rows[1]["content"] == ""


def test_csv_cells_that_start_like_a_formula_are_shown_not_run_while_jsonl_keeps_them(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example","click")'
    reqs, answers = [request("=id", "@SUM(A1)")], [chat_answer("=id", content=formula)]
    as_csv = join(tmp_path, reqs, answers, None, format="csv", results_path=tmp_path / "results.csv")
    as_jsonl = join(tmp_path, reqs, answers, None, results_path=tmp_path / "results.jsonl")

    with as_csv.results_path.open(encoding="utf-8", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert (row["custom_id"], row["input"], row["content"]) == ("'=id", "'@SUM(A1)", "'" + formula)
    assert read_jsonl(as_jsonl.results_path)[0]["content"] == formula


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-x", "'-x"),
        ("@a", "'@a"),
        ("\tx", "'\tx"),
        ("a=1", "a=1"),
        ("", ""),
        (None, None),
    ],
)
def test_spreadsheet_safe_quotes_only_formula_starts(text: str | None, expected: str | None) -> None:
    assert results.spreadsheet_safe(text) == expected


def test_responses_bodies_give_their_output_text_and_usage(tmp_path: Path) -> None:
    joined = join(tmp_path, [request("r1", "Hi", url="/responses")], [responses_answer("r1", "Hello!")], None)

    row = read_jsonl(joined.results_path)[0]
    assert row["input"] == "Hi"
    assert row["content"] == "Hello!"
    assert row["finish_reason"] == "stop"
    assert row["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "image_url"}]}]},
         "Describe [image]"),
        ({"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
                       {"role": "user", "content": "last"}]}, "last"),
        ({"messages": [{"role": "system", "content": "only system"}]}, None),
        ({"input": "plain input"}, "plain input"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "typed"}]}]}, "typed"),
        ({"prompt": "a completion prompt"}, "a completion prompt"),
        ({"messages": "not a list"}, None),
    ],
)  # fmt: skip
def test_the_input_column_is_the_last_user_content(tmp_path: Path, body: dict[str, Any], expected: str | None) -> None:
    line = {"custom_id": "q", "method": "POST", "url": "/chat/completions", "body": {"model": "m", **body}}

    joined = join(tmp_path, [line], [], None)

    assert read_jsonl(joined.results_path)[0]["input"] == expected


def test_long_questions_are_truncated_in_the_results_and_more_in_the_preview(tmp_path: Path) -> None:
    long = "x" * 5000
    joined = join(tmp_path, [request("a", long)], [chat_answer("a", content=long)], None, preview=5)

    row = read_jsonl(joined.results_path)[0]
    assert len(row["input"]) == 500
    assert row["content"] == long
    assert len(joined.preview) == 1
    assert joined.preview[0].content is not None
    assert len(joined.preview[0].content) == 200


@pytest.mark.parametrize(("asked", "shown"), [(0, 0), (3, 3), (100, 6)])
def test_the_preview_has_at_most_the_rows_asked_for(tmp_path: Path, asked: int, shown: int) -> None:
    joined = join(tmp_path, [request(cid) for cid in IDS], [chat_answer(cid) for cid in IDS], None, preview=asked)

    assert len(joined.preview) == shown


def test_retry_lines_are_the_input_lines_even_with_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    raw = [orjson.dumps(request(cid, f"q {cid}")) for cid in ("a", "b", "c")]
    input_path = tmp_path / "input.jsonl"
    input_path.write_bytes(b"\xef\xbb\xbf" + raw[0] + b"\r\n\r\n" + raw[1] + b"\r\n" + raw[2])  # no final newline
    output = write_jsonl(tmp_path / "output.jsonl", [chat_answer("b")])

    joined = join_results(
        input_path,
        output_path=output,
        error_path=None,
        results_path=tmp_path / "results.jsonl",
        retry_path=tmp_path / "retry.jsonl",
    )

    assert joined.retry_path is not None
    assert joined.retry_path.read_bytes() == raw[0] + b"\n" + raw[2] + b"\n"
    assert_valid_batch_file(joined.retry_path)
    assert [row["input"] for row in read_jsonl(joined.results_path)] == ["q a", "q b", "q c"]


def test_input_lines_that_are_not_requests_are_counted_and_skipped(tmp_path: Path) -> None:
    joined = join(tmp_path, [request("a"), {"no": "id"}, [1]], [chat_answer("a")], None)

    assert joined.requests == 1
    assert joined.skipped_input_lines == 2


def test_an_existing_results_file_is_never_overwritten_unless_asked(tmp_path: Path) -> None:
    existing = tmp_path / "out" / "results.jsonl"
    existing.parent.mkdir()
    existing.write_bytes(b"keep me\n")

    with pytest.raises(InvalidInput):
        join(tmp_path, [request("a")], [chat_answer("a")], None)
    assert existing.read_bytes() == b"keep me\n"
    assert sorted(p.name for p in existing.parent.iterdir()) == ["results.jsonl"]

    join(tmp_path, [request("a")], [chat_answer("a")], None, overwrite=True)
    assert read_jsonl(existing)[0]["custom_id"] == "a"


def test_planned_paths_move_to_a_free_suffix_when_an_earlier_fetch_wrote_files(tmp_path: Path) -> None:
    first = plan_paths(tmp_path, "batch_1", "jsonl")
    first.retry.write_bytes(b"")

    second = plan_paths(tmp_path, "batch_1", "jsonl")
    again = plan_paths(tmp_path, "batch_1", "jsonl", overwrite=True)

    assert first.results.name == "batch_1-results.jsonl"
    assert second.results.name == "batch_1-results-2.jsonl"
    assert second.retry.name == "batch_1-retry-2.jsonl"
    assert again == first


def test_a_batch_id_cannot_steer_the_paths_outside_the_folder(tmp_path: Path) -> None:
    paths = plan_paths(tmp_path, "../../etc/passwd", "csv")

    assert paths.results.parent == tmp_path
    assert paths.results.suffix == ".csv"


def test_a_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        join_results(
            tmp_path / "nope.jsonl",
            output_path=None,
            error_path=None,
            results_path=tmp_path / "r.jsonl",
            retry_path=tmp_path / "retry.jsonl",
        )
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        join(tmp_path, [request("a")], [], None, format="xlsx")
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_tool_calls_and_refusals_become_the_content(tmp_path: Path) -> None:
    tool = chat_answer("t", finish_reason="tool_calls")
    tool["response"]["body"]["choices"][0]["message"] = {"content": None, "tool_calls": [{"id": "call_1"}]}
    refusal = chat_answer("r")
    refusal["response"]["body"]["choices"][0]["message"] = {"content": None, "refusal": "I can't."}

    joined = join(tmp_path, [request("t"), request("r")], [tool, refusal], None)

    rows = read_jsonl(joined.results_path)
    assert orjson.loads(rows[0]["content"]) == [{"id": "call_1"}]
    assert rows[1]["content"] == "I can't."


def test_an_empty_input_gives_an_empty_results_file(tmp_path: Path) -> None:
    joined = join(tmp_path, [], [], None, format="csv", results_path=tmp_path / "r.csv")

    assert joined.requests == 0
    assert list(csv.reader(io.StringIO(joined.results_path.read_text(encoding="utf-8"))))[1:] == []


def test_requests_the_service_never_ran_are_missing_and_keep_the_reason(tmp_path: Path) -> None:
    joined = join(tmp_path, [request("a"), request("b")], [chat_answer("a")], [openai_error_line("b", "batch_expired")])

    row = read_jsonl(joined.results_path)[1]
    assert row["status"] == "missing"
    assert row["error"]["code"] == "batch_expired"
    assert joined.counts.model_dump() == {"succeeded": 1, "failed": 0, "missing": 1}
    assert joined.failures_by_code == {}
    assert joined.retry_path is not None


def test_the_short_path_for_chat_answers_writes_the_same_bytes_as_the_general_one() -> None:
    for line in (chat_answer("a", content='quote " and \\ and é'), chat_answer("b", finish_reason="length")):
        outcome, columns, usage = answer_of(line)
        general = outcome_of(line)
        assert outcome is None
        assert columns == orjson.dumps(general.fields())[1:]
        assert usage == general.usage


def test_spilling_to_disk_past_the_memory_budget_gives_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = [request(cid, f"q {cid}") for cid in IDS]
    outputs = [chat_answer(cid, content=f"a {cid}") for cid in IDS[:4]]
    errors = [error_line("task-4")]
    (tmp_path / "kept").mkdir()
    (tmp_path / "spilled").mkdir()
    kept = join(tmp_path / "kept", inputs, outputs, errors)
    monkeypatch.setattr(results, "ANSWERS_BUDGET", 200)  # the first answer or two in memory, the rest on disk
    spilled = join(tmp_path / "spilled", inputs, outputs, errors)

    assert spilled.results_path.read_bytes() == kept.results_path.read_bytes()
    assert spilled.retry_path is not None
    assert kept.retry_path is not None
    assert spilled.retry_path.read_bytes() == kept.retry_path.read_bytes()
    assert spilled.preview == kept.preview


def test_a_line_too_long_to_read_is_counted_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "MAX_LINE_BYTES", 1000)
    huge = chat_answer("a", content="x" * 2000)

    joined = join(tmp_path, [request("a"), request("x" * 1500), request("b")], [huge, chat_answer("b")], None)

    assert joined.requests == 2
    assert joined.skipped_input_lines == 1
    assert joined.unparsable_lines == 1
    assert [row["status"] for row in read_jsonl(joined.results_path)] == ["missing", "succeeded"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fates=st.lists(st.sampled_from(["ok", "error", "expired", "none"]), max_size=12), seed=st.randoms())
def test_every_request_gets_one_row_and_the_retry_file_holds_exactly_the_others(
    tmp_path_factory: pytest.TempPathFactory, fates: list[str], seed: random.Random
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    ids = [f"id-{n}" for n in range(len(fates))]
    outputs = [chat_answer(cid) for cid, fate in zip(ids, fates, strict=True) if fate == "ok"]
    errors = [error_line(cid) for cid, fate in zip(ids, fates, strict=True) if fate == "error"]
    errors += [openai_error_line(cid) for cid, fate in zip(ids, fates, strict=True) if fate == "expired"]
    seed.shuffle(outputs)
    seed.shuffle(errors)

    joined = join(folder, [request(cid) for cid in ids], outputs, errors)

    rows = read_jsonl(joined.results_path)
    expected = {"ok": "succeeded", "error": "failed", "expired": "missing", "none": "missing"}
    assert [(row["custom_id"], row["status"]) for row in rows] == [
        (cid, expected[fate]) for cid, fate in zip(ids, fates, strict=True)
    ]
    retried = read_jsonl(joined.retry_path) if joined.retry_path else []
    assert [line["custom_id"] for line in retried] == [row["custom_id"] for row in rows if row["status"] != "succeeded"]
    assert joined.counts.succeeded + joined.counts.failed + joined.counts.missing == len(ids)


def test_failures_by_code_stay_small_whatever_the_error_file_holds(tmp_path: Path) -> None:
    ids = [f"e{n}" for n in range(30)]
    errors = [error_line(cid, code=f"code_{n}_" + "x" * 500) for n, cid in enumerate(ids)]

    joined = join(tmp_path, [request(cid) for cid in ids], None, errors)

    assert len(joined.failures_by_code) == 21
    assert joined.failures_by_code["other"] == 10
    assert sum(joined.failures_by_code.values()) == 30
    assert max(len(code) for code in joined.failures_by_code) <= 100


def test_answers_given_as_content_parts_are_joined_into_text(tmp_path: Path) -> None:
    line = chat_answer("a")
    line["response"]["body"]["choices"][0]["message"]["content"] = [{"type": "text", "text": "part one"}]

    joined = join(tmp_path, [request("a")], [line], None)

    assert read_jsonl(joined.results_path)[0]["content"] == "part one"


@pytest.mark.parametrize("budget", [results.ANSWERS_BUDGET, 200])  # answers in memory, or most of them spilled
def test_usage_totals_count_each_answer_a_request_asked_for_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    monkeypatch.setattr(results, "ANSWERS_BUDGET", budget)
    inputs = [request("task-0"), request("task-1"), request("task-0"), request("task-2")]
    outputs = [chat_answer("not-asked"), chat_answer("task-1"), chat_answer("task-0"), chat_answer("also-not-asked")]

    joined = join(tmp_path, inputs, outputs, [error_line("task-2")])

    assert joined.usage.model_dump() == {"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50}
    assert joined.unmatched_lines == 2
    assert joined.counts.model_dump() == {"succeeded": 3, "failed": 1, "missing": 0}
    assert [row["usage"] is not None for row in read_jsonl(joined.results_path)] == [True, True, True, False]
