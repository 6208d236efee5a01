"""`aoai-batch-mcp validate` and `build`: exit codes, JSON output, limits from flags and the environment."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from aoai_batch.results.source_rows import link_path, load_link
from aoai_batch.validation import validate_file
from server.cli import main
from tests.support.cli import isolate_cli
from tests.support.paths import VALIDATION_FIXTURES


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_cli(tmp_path, monkeypatch)  # the embedded emulator, whose deployments build checks names against
    monkeypatch.chdir(tmp_path)
    for name in ("AOAI_BATCH_MAX_REQUESTS", "AOAI_BATCH_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([str(VALIDATION_FIXTURES / "valid.jsonl")], 0),
        ([str(VALIDATION_FIXTURES / "duplicate_custom_id.jsonl")], 1),
        ([str(VALIDATION_FIXTURES / "empty_file.jsonl")], 1),
        ([str(VALIDATION_FIXTURES / "valid.jsonl"), "--max-requests", "2"], 1),
        ([str(VALIDATION_FIXTURES / "model_not_found.jsonl"), "--deployment", "gpt-4o"], 1),
        (["missing.jsonl"], 2),
        ([str(VALIDATION_FIXTURES)], 2),
        ([], 2),
        ([str(VALIDATION_FIXTURES / "valid.jsonl"), "--max-bytes", "zero"], 2),
    ],
)
def test_validate_exit_code_says_valid_issues_or_usage(args: list[str], code: int) -> None:
    try:
        result = main(["validate", *args])
    except SystemExit as exit_:  # argparse's usage errors
        result = int(exit_.code or 0)
    assert result == code


def test_validate_json_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(VALIDATION_FIXTURES / "invalid_method.jsonl"), "--json"]) == 1

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["issue_counts"] == {"invalid_method": 1}
    assert report["issues"][0]["line"] == 3


def test_validate_takes_its_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOAI_BATCH_MAX_REQUESTS", "2")

    assert main(["validate", str(VALIDATION_FIXTURES / "valid.jsonl")]) == 1


def test_build_from_a_csv_writes_a_valid_file_beside_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rows.csv").write_text("id,text\na,Hello\nb,World\n")

    code = main(
        [
            "build",
            "--deployment",
            "gpt-4o-mini",
            "--source",
            "rows.csv",
            "--template",
            "Say {text}",
            "--id-field",
            "id",
            "--body",
            '{"max_tokens": 20}',
            "--json",
        ]
    )

    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [Path(f["path"]).name for f in result["files"]] == ["rows.batch.jsonl"]
    lines = [orjson.loads(line) for line in (tmp_path / "rows.batch.jsonl").read_bytes().splitlines()]
    assert [line["custom_id"] for line in lines] == ["a", "b"]
    assert lines[0]["body"]["max_tokens"] == 20
    assert main(["validate", "rows.batch.jsonl"]) == 0
    # The build keeps the link to the rows, so fetching the results brings their columns back.
    link = load_link(link_path(tmp_path / "home", tmp_path / "rows.batch.jsonl"))
    assert link is not None
    assert (link.path, link.rows) == (str(tmp_path / "rows.csv"), 2)


def test_build_writes_into_the_current_folder_not_beside_its_source(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("text\nHello\n")

    assert main(["build", "--deployment", "gpt-4o-mini", "--source", "data/rows.csv", "--template", "{text}"]) == 0

    assert (tmp_path / "rows.batch.jsonl").is_file()
    assert not (tmp_path / "data" / "rows.batch.jsonl").exists()


@pytest.mark.parametrize(
    ("extra", "written"),
    [
        ([], "out/batch.jsonl"),
        (["--output", "mine.jsonl"], "out/mine.jsonl"),
        (["--output", "sub/x.jsonl"], "out/sub/x.jsonl"),
    ],
)
def test_build_writes_into_the_output_dir(tmp_path: Path, extra: list[str], written: str) -> None:
    assert main(["build", "--deployment", "gpt-4o-mini", "--prompt", "hi", "--output-dir", "out", *extra]) == 0

    assert (tmp_path / written).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_build_splits_by_the_request_limit(tmp_path: Path) -> None:
    code = main(
        [
            "build",
            "--deployment",
            "gpt-4o-mini",
            "--prompt",
            "a",
            "--prompt",
            "b",
            "--prompt",
            "c",
            "--max-requests",
            "2",
            "--output",
            "out.jsonl",
        ]
    )

    assert code == 0
    assert sorted(path.name for path in tmp_path.glob("out*.jsonl")) == ["out-001.jsonl", "out-002.jsonl"]


def test_build_from_a_requests_file(tmp_path: Path) -> None:
    (tmp_path / "requests.json").write_text(json.dumps([{"custom_id": "x", "prompt": "Hi", "temperature": 0}]))

    assert main(["build", "--deployment", "gpt-4o-mini", "--requests", "requests.json", "--output", "out.jsonl"]) == 0
    [line] = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert (line["custom_id"], line["body"]["temperature"]) == ("x", 0)


@pytest.mark.parametrize(
    "args",
    [
        ["--source", "missing.csv"],
        ["--requests", "missing.json"],
        ["--prompt", "a", "--template", "{nope}"],
        ["--prompt", "a", "--output", "taken.jsonl"],
    ],
)
def test_build_refusal_exits_1_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "taken.jsonl").write_text("keep")
    before = sorted(path.name for path in tmp_path.iterdir())

    assert main(["build", "--deployment", "gpt-4o-mini", *args]) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    assert (tmp_path / "taken.jsonl").read_text() == "keep"


@pytest.mark.parametrize(
    "args",
    [
        ["--prompt", "a"],
        ["--deployment", "d"],
        ["--deployment", "d", "--prompt", "a", "--source", "x.csv"],
        ["--deployment", "d", "--prompt", "a", "--body", "[1]"],
        ["--deployment", "d", "--prompt", "a", "--endpoint", "/embeddings"],
    ],
)
def test_build_usage_errors_exit_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["build", *args])
    assert exit_.value.code == 2


def test_build_for_a_deployment_the_emulator_does_not_have_exits_1_naming_the_ones_it_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--deployment", "gpt-5", "--prompt", "a", "--output", "out.jsonl"]) == 1
    err = capsys.readouterr().err
    assert "gpt-4o-mini" in err
    assert not (tmp_path / "out.jsonl").exists()


def test_build_on_azure_does_not_check_the_deployment_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    assert main(["build", "--deployment", "my-batch", "--prompt", "a", "--output", "out.jsonl", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [report["deployment_checked"] for report in result["validation"]] == [False]


@pytest.mark.parametrize(("extra", "checked"), [([], False), (["--deployment", "gpt-4o-mini"], True)])
def test_validate_says_whether_the_deployment_was_checked(
    capsys: pytest.CaptureFixture[str], extra: list[str], checked: bool
) -> None:
    assert main(["validate", str(VALIDATION_FIXTURES / "valid.jsonl"), *extra]) == 0
    text = capsys.readouterr().out
    assert main(["validate", str(VALIDATION_FIXTURES / "valid.jsonl"), *extra, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["deployment_checked"] is checked
    assert ("not checked" in text) is not checked
    assert ("--deployment" in text) is not checked


def test_build_with_literal_braces_in_the_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doubled = ["build", "--deployment", "gpt-4o-mini", "--prompt", "x", "--template", 'Reply {{"a": "{prompt}"}}']
    single = ["build", "--deployment", "gpt-4o-mini", "--prompt", "x", "--template", 'Reply {"a": 1} to {prompt}']

    assert main([*single, "--output", "single.jsonl"]) == 1
    assert '{{"a": 1}}' in capsys.readouterr().err
    assert main([*doubled, "--output", "doubled.jsonl"]) == 0
    [line] = [orjson.loads(line) for line in (tmp_path / "doubled.jsonl").read_bytes().splitlines()]
    assert line["body"]["messages"][0]["content"] == 'Reply {"a": "x"}'
    assert not (tmp_path / "single.jsonl").exists()


@pytest.mark.parametrize("fixture", sorted(path.name for path in VALIDATION_FIXTURES.glob("*.jsonl")))
def test_validate_json_is_the_reports_own_json(fixture: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", str(VALIDATION_FIXTURES / fixture), "--json", "--deployment", "gpt-4o"])

    report = validate_file(
        VALIDATION_FIXTURES / fixture, max_requests=100_000, max_bytes=200_000_000, deployments=["gpt-4o"]
    )
    assert capsys.readouterr().out == report.model_dump_json(indent=2) + "\n"


def test_an_invalid_limit_setting_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AOAI_BATCH_MAX_BYTES", "lots")

    assert main(["validate", str(VALIDATION_FIXTURES / "valid.jsonl")]) == 2
    assert "AOAI_BATCH_MAX_BYTES" in capsys.readouterr().err
