"""The browser test's guard (tests/support/browser.py): without chromium it fails in CI and skips elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import chromium_or_skip


@pytest.mark.parametrize("variable", ["REQUIRE_BROWSER", "CI"])
def test_a_missing_chromium_fails_where_a_browser_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(variable, "1")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        chromium_or_skip(tmp_path / "chromium")


def test_a_missing_chromium_skips_elsewhere_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        chromium_or_skip(tmp_path / "chromium")


def test_a_present_chromium_is_used(tmp_path: Path) -> None:
    executable = tmp_path / "chromium"
    executable.touch()
    assert chromium_or_skip(executable) == executable
