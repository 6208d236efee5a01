"""runs/plan.py: a run's whole input (built or copied, checked in one pass), its shards, a shard's file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aoai_batch.errors import InvalidBatchFile, InvalidInput, UnknownDeployment
from aoai_batch.results.source_rows import load_link
from aoai_batch.runs.plan import (
    BYTES_MARGIN,
    INPUT_NAME,
    SOURCE_LINK_NAME,
    ShardRange,
    line_rewriter,
    line_tokens,
    plan_shards,
    prepare_run_input,
    write_shard,
)
from aoai_batch.tokens import APPROXIMATE, TokenEstimator
from aoai_batch.validation import validate_file
from tests.support.batch_files import request_line, write_lines


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_rows_of_a_csv_become_the_runs_input_with_a_link_to_them(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "rows.csv", [{"id": f"r{n}", "text": f"text {n}"} for n in range(5)])
    run_dir = tmp_path / "run"

    prepared = prepare_run_input(
        run_dir, deployment="gpt-4o-mini", source_path=source, template="Say {text}", id_field="id"
    )

    assert prepared.input_path == run_dir / INPUT_NAME
    assert prepared.source_path == source
    assert prepared.endpoint == "/chat/completions"
    assert prepared.requests == 5
    assert prepared.bytes == prepared.input_path.stat().st_size
    assert prepared.validation.ok
    assert prepared.validation.requests == 5
    lines = lines_of(prepared.input_path)
    assert [line["custom_id"] for line in lines] == [f"r{n}" for n in range(5)]
    assert lines[2]["body"]["messages"][-1]["content"] == "Say text 2"
    link = load_link(run_dir / SOURCE_LINK_NAME)
    assert link is not None
    assert link.rows == 5
    assert link.first_row == 0
    assert link.stale_reason() is None


def test_prompts_and_requests_are_built_as_build_builds_them(tmp_path: Path) -> None:
    from_prompts = prepare_run_input(
        tmp_path / "a", deployment="d", prompts=["one", "two"], system_prompt="Be brief.", body={"max_tokens": 5}
    )
    from_requests = prepare_run_input(
        tmp_path / "b", deployment="d", requests=[{"custom_id": "x", "prompt": "hi"}], endpoint="/responses"
    )

    first = lines_of(from_prompts.input_path)[0]
    assert first["body"] == {
        "model": "d",
        "max_tokens": 5,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"}],
    }
    assert from_prompts.source_path is None
    assert not (tmp_path / "a" / SOURCE_LINK_NAME).exists()
    assert from_requests.endpoint == "/responses"
    assert lines_of(from_requests.input_path)[0]["body"] == {"model": "d", "input": "hi"}


def test_a_batch_file_of_any_size_is_copied_whole_past_the_per_file_limits(tmp_path: Path) -> None:
    # 120,001 requests: more than one Azure file takes, which a run does not mind.
    data = b"".join(orjson.dumps(request_line(f"t{n}", "q")) + b"\n" for n in range(120_001))
    batch = tmp_path / "big.jsonl"
    batch.write_bytes(data)

    prepared = prepare_run_input(tmp_path / "run", deployment="ignored", batch_path=batch)

    assert prepared.input_path.read_bytes() == data
    assert prepared.requests == 120_001
    assert prepared.validation.ok
    assert prepared.validation.path == str(prepared.input_path)


def test_a_duplicate_id_anywhere_in_the_run_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    lines = [request_line(f"t{n}") for n in range(150_000)] + [request_line("t7")]
    batch = write_lines(tmp_path / "dup.jsonl", *lines)
    run_dir = tmp_path / "run"

    with pytest.raises(InvalidBatchFile) as raised:
        prepare_run_input(run_dir, deployment="d", batch_path=batch)

    assert "line 150001: duplicate_custom_id" in str(raised.value)
    assert not run_dir.exists()


def test_a_batch_file_with_a_bad_line_raises_what_upload_raises(tmp_path: Path) -> None:
    batch = write_lines(tmp_path / "bad.jsonl", request_line("a"), {"custom_id": "b", "method": "GET"})
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    with pytest.raises(InvalidBatchFile):
        prepare_run_input(run_dir, deployment="d", batch_path=batch)

    assert list(run_dir.iterdir()) == []  # the folder was there before: kept, and empty


def test_a_batch_file_naming_an_unknown_deployment_is_unknown_deployment(tmp_path: Path) -> None:
    batch = write_lines(tmp_path / "in.jsonl", request_line("a", model="nope"))

    with pytest.raises(UnknownDeployment):
        prepare_run_input(tmp_path / "run", deployment="d", batch_path=batch, deployments=["gpt-4o-mini"])


def test_built_input_refusals_are_builds_errors(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(UnknownDeployment):
        prepare_run_input(run_dir, deployment="x", prompts=["a"], deployments=["gpt-4o-mini"])
    with pytest.raises(InvalidInput, match="exactly one"):
        prepare_run_input(run_dir, deployment="d", prompts=["a"], requests=[{"prompt": "b"}])
    with pytest.raises(InvalidInput, match="line 2: custom_id a is used on an earlier line"):
        prepare_run_input(run_dir, deployment="d", requests=[{"custom_id": "a", "prompt": "1"}] * 2)
    with pytest.raises(InvalidInput, match="prompts is empty"):
        prepare_run_input(run_dir, deployment="d", prompts=[])
    with pytest.raises(InvalidInput, match="would not make a valid batch file"):
        prepare_run_input(run_dir, deployment="d", requests=[{"messages": [{"role": "robot", "content": "x"}]}])
    assert not run_dir.exists()


def test_a_source_that_fails_half_way_leaves_no_input_and_no_link(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_bytes(b'{"prompt": "a"}\n{"prompt": "b"}\nnot json\n')
    run_dir = tmp_path / "run"

    with pytest.raises(InvalidInput, match="line 3 is not valid JSON"):
        prepare_run_input(run_dir, deployment="d", source_path=source)

    assert not run_dir.exists()


def test_the_runs_token_estimate_is_the_sum_of_its_lines_estimates(tmp_path: Path) -> None:
    requests: list[dict[str, Any]] = [
        {"messages": [{"role": "system", "content": "s" * 9}, {"role": "user", "content": "hello there"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url"}]}]},
        {"messages": [{"role": "user", "content": "x", "name": "bob"}]},
    ]
    prepared = prepare_run_input(tmp_path / "run", deployment="d", requests=requests)

    per_line = [line_tokens("/chat/completions", line["body"]) for line in lines_of(prepared.input_path)]
    estimator = TokenEstimator(sample_every=1, counter=APPROXIMATE)
    for line in lines_of(prepared.input_path):
        estimator.add("/chat/completions", line["body"])
    assert sum(per_line) == prepared.estimated_input_tokens == estimator.total
    assert line_tokens("/responses", {"input": "abcdefgh", "instructions": "be"}) == 3


# --- plan_shards ---------------------------------------------------------------------------------


def write_input(path: Path, sizes: list[int], model: str = "m") -> Path:
    return write_lines(path, *(request_line(f"t{n}", "x" * size, model=model) for n, size in enumerate(sizes)))


def check_plan(path: Path, shards: list[ShardRange], max_requests: int, max_bytes: int, max_tokens: int | None) -> None:
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    assert sum(shard.line_count for shard in shards) == len(lines)
    line = byte = 0
    for shard in shards:
        assert (shard.first_line, shard.start_byte) == (line, byte)
        part = lines[line : line + shard.line_count]
        assert shard.end_byte - shard.start_byte == sum(map(len, part))
        assert 1 <= shard.line_count <= max_requests
        assert shard.end_byte - shard.start_byte <= max_bytes * BYTES_MARGIN
        tokens = [line_tokens("/chat/completions", orjson.loads(item)["body"]) for item in part]
        assert shard.estimated_tokens == sum(tokens)
        if max_tokens is not None and shard.line_count > 1:
            assert shard.estimated_tokens <= max_tokens
        line, byte = line + shard.line_count, shard.end_byte


def test_shards_are_bounded_by_requests(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", [3] * 10)
    shards = plan_shards(path, max_requests=4, max_bytes=10**9, max_tokens=None)
    assert [shard.line_count for shard in shards] == [4, 4, 2]
    check_plan(path, shards, 4, 10**9, None)


def test_shards_are_bounded_by_tokens_and_a_request_over_the_bound_goes_alone(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", [40, 40, 400, 40])  # 40 chars = 10 tokens (+ framing 8)
    shards = plan_shards(path, max_requests=100, max_bytes=10**9, max_tokens=40)
    assert [shard.line_count for shard in shards] == [2, 1, 1]
    assert shards[1].estimated_tokens > 40


def test_bytes_leave_room_for_the_longest_deployment_name(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", [10] * 6, model="m")
    line_bytes = len(path.read_bytes().splitlines(keepends=True)[0])
    bound = int(((line_bytes + 60) * 3) / BYTES_MARGIN) + 1  # three lines, each 60 bytes longer once rewritten

    shards = plan_shards(path, max_requests=100, max_bytes=bound, max_tokens=None, deployments=["m" + "x" * 60])
    without = plan_shards(path, max_requests=100, max_bytes=bound, max_tokens=None)

    assert [shard.line_count for shard in shards] == [3, 3]
    assert without[0].line_count > 3
    for shard in shards:
        dest = tmp_path / f"s{shard.first_line}.jsonl"
        assert write_shard(path, shard, dest, deployment="m" + "x" * 60) <= bound * BYTES_MARGIN


def test_a_request_larger_than_a_shard_may_hold_is_refused(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", [10, 5000])
    with pytest.raises(InvalidInput, match="Request 2 of the run's input"):
        plan_shards(path, max_requests=10, max_bytes=1000, max_tokens=None)
    with pytest.raises(InvalidInput):
        plan_shards(path, max_requests=0, max_bytes=1000, max_tokens=None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=40),
    max_requests=st.integers(1, 12),
    max_tokens=st.one_of(st.none(), st.integers(1, 400)),
    extra_bytes=st.integers(0, 3000),
)
def test_every_plan_covers_the_input_in_order_within_every_bound(
    tmp_path: Path, sizes: list[int], max_requests: int, max_tokens: int | None, extra_bytes: int
) -> None:
    path = write_input(tmp_path / "prop.jsonl", sizes)
    biggest = max(map(len, path.read_bytes().splitlines(keepends=True)))
    max_bytes = int(biggest / BYTES_MARGIN) + 2 + extra_bytes

    shards = plan_shards(path, max_requests=max_requests, max_bytes=max_bytes, max_tokens=max_tokens)

    check_plan(path, shards, max_requests, max_bytes, max_tokens)


# --- write_shard ---------------------------------------------------------------------------------


def test_a_shards_file_is_its_range_with_the_deployment_named_in_every_line(tmp_path: Path) -> None:
    prepared = prepare_run_input(tmp_path / "run", deployment="first", prompts=[f"p{n}" for n in range(10)])
    shards = plan_shards(prepared.input_path, max_requests=4, max_bytes=10**6, max_tokens=None)
    dest = tmp_path / "run" / "shard-0001-a1.jsonl"

    written = write_shard(prepared.input_path, shards[1], dest, deployment='dep "two"')

    lines = lines_of(dest)
    assert written == dest.stat().st_size
    assert [line["custom_id"] for line in lines] == [f"request-{n}" for n in range(5, 9)]
    assert {line["body"]["model"] for line in lines} == {'dep "two"'}
    report = validate_file(dest, max_requests=4, max_bytes=10**6)
    assert report.ok
    assert report.deployment == 'dep "two"'


def test_a_copied_file_in_another_layout_is_rewritten_as_json(tmp_path: Path) -> None:
    odd = [
        b'{"custom_id": "a", "method": "POST", "url": "/chat/completions", "body": {"messages": '
        b'[{"role": "user", "content": "\\"model\\":\\"m\\""}], "model": "m"}}',
        b'{"custom_id":"b","method":"POST","url":"/chat/completions","body":{"model":"m\\u00e9","messages":'
        b'[{"role":"user","content":"x"}],"metadata":{"model":"m"}}}',
    ]
    source = tmp_path / "odd.jsonl"
    source.write_bytes(b"\n".join(odd))  # and no newline at the end
    shard = ShardRange(0, 2, 0, source.stat().st_size, 0)

    write_shard(source, shard, tmp_path / "out.jsonl", deployment="new")

    lines = lines_of(tmp_path / "out.jsonl")
    assert [line["body"]["model"] for line in lines] == ["new", "new"]
    assert lines[0]["body"]["messages"][0]["content"] == '"model":"m"'
    assert lines[1]["body"]["metadata"] == {"model": "m"}


def test_the_fast_rewrite_only_touches_the_bodys_model() -> None:
    rewrite = line_rewriter(orjson.dumps("new"))
    line = orjson.dumps(request_line("a", 'say "model":"m"', model="m"))
    assert orjson.loads(rewrite(line)) == request_line("a", 'say "model":"m"', model="new")


def test_a_shard_past_the_end_of_a_changed_input_is_refused(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", [3, 3])
    shard = ShardRange(0, 3, 0, path.stat().st_size + 100, 0)
    with pytest.raises(InvalidInput, match="shorter than its plan"):
        write_shard(path, shard, tmp_path / "out.jsonl", deployment="d")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_block_rewritten_at_once_is_what_the_line_by_line_rewrite_gives(tmp_path: Path) -> None:
    prepared = prepare_run_input(
        tmp_path / "run", deployment="first", prompts=[f'p{n} "model":"first"' for n in range(50)], body={"n": 1}
    )
    [shard] = plan_shards(prepared.input_path, max_requests=100, max_bytes=10**6, max_tokens=None)
    write_shard(prepared.input_path, shard, tmp_path / "fast.jsonl", deployment="second")

    rewrite = line_rewriter(orjson.dumps("second"))
    expected = b"".join(rewrite(line) + b"\n" for line in prepared.input_path.read_bytes().splitlines())
    assert (tmp_path / "fast.jsonl").read_bytes() == expected
    mixed = write_lines(tmp_path / "mixed.jsonl", request_line("a", model="m1"), request_line("b", model="m2"))
    write_shard(mixed, ShardRange(0, 2, 0, mixed.stat().st_size, 0), tmp_path / "m.jsonl", deployment="z")
    assert [line["body"]["model"] for line in lines_of(tmp_path / "m.jsonl")] == ["z", "z"]
