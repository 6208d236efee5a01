"""file_limits reads AOAI_BATCH_MAX_REQUESTS / AOAI_BATCH_MAX_BYTES as Settings does, without pydantic; the bounds
and the file rules are stated once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from aoai_batch.emulator import expiry
from aoai_batch.errors import InvalidInput
from aoai_batch.limits import (
    DEFAULT_LIMITS,
    MAX_BYTES_VARIABLE,
    MAX_FILE_EXPIRY_DAYS,
    MAX_REQUESTS_VARIABLE,
    MIN_FILE_EXPIRY_DAYS,
    FileRules,
    file_limits,
)
from aoai_batch.settings import Settings, file_rules
from aoai_batch.validation import validate_file


@pytest.mark.parametrize("variable", [MAX_REQUESTS_VARIABLE, MAX_BYTES_VARIABLE])
@pytest.mark.parametrize("text", [None, "", "  ", "5", " 5 ", "+5", "1_000", "5.0", "0", "-1", "5.5", "abc", "0x10"])
def test_limits_agree_with_settings(monkeypatch: pytest.MonkeyPatch, variable: str, text: str | None) -> None:
    for name in (MAX_REQUESTS_VARIABLE, MAX_BYTES_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    if text is not None:
        monkeypatch.setenv(variable, text)
    try:
        settings = Settings()
    except ValidationError:
        with pytest.raises(InvalidInput, match=variable):
            file_limits()
        return
    assert file_limits() == FileRules(settings.max_requests, settings.max_bytes)


def test_an_invalid_limit_is_named_without_its_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        file_limits({MAX_BYTES_VARIABLE: "secret-looking-value"})

    assert MAX_BYTES_VARIABLE in str(caught.value)
    assert "secret-looking-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("days", "accepted"),
    [
        (MIN_FILE_EXPIRY_DAYS - 1, False),
        (MIN_FILE_EXPIRY_DAYS, True),
        (MAX_FILE_EXPIRY_DAYS, True),
        (MAX_FILE_EXPIRY_DAYS + 1, False),
    ],
)
def test_the_expiry_setting_takes_the_one_range(tmp_path: Path, days: int, accepted: bool) -> None:
    if accepted:
        assert Settings(home=tmp_path, file_expiry_days=days).file_expiry_days == days
        return
    with pytest.raises(ValidationError):
        Settings(home=tmp_path, file_expiry_days=days)


def test_the_emulator_bounds_expiry_by_the_same_days() -> None:
    assert (expiry.AZURE_MIN_SECONDS, expiry.MAX_SECONDS) == (
        MIN_FILE_EXPIRY_DAYS * 86_400,
        MAX_FILE_EXPIRY_DAYS * 86_400,
    )


def test_file_rules_come_from_the_settings_and_the_embedded_emulators_deployments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_EMULATOR_DEPLOYMENTS", "b=gpt-4o,a=gpt-4o-mini")
    embedded = Settings(home=tmp_path, provider="emulator", max_requests=3, max_bytes=400)
    azure = Settings(home=tmp_path, endpoint="https://r.openai.azure.com", api_key="k")

    assert file_rules(embedded) == FileRules(max_requests=3, max_bytes=400, deployments=("a", "b"))
    assert file_rules(azure) == DEFAULT_LIMITS


def test_file_rules_are_what_validation_checks(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    lines = [{"custom_id": name, "method": "POST", "url": "/chat/completions", "body": body} for name in "ab"]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    report = validate_file(path, **FileRules(max_requests=1, max_bytes=10_000, deployments=("d",)).keywords())

    assert set(report.issue_counts) == {"too_many_tasks", "model_not_found"}
