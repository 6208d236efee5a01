"""A CLI run on the embedded emulator, whatever the shell has set."""

from __future__ import annotations

from pathlib import Path

import pytest

CLOUD_SETTINGS = (
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AOAI_BATCH_PROVIDER",
    "AOAI_BATCH_AUTH",
    "AZURE_OPENAI_API_VERSION",
    "OPENAI_API_VERSION",
)


def isolate_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLI run on the embedded emulator with its home and workspace in tmp_path; the home."""
    for name in CLOUD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AOAI_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AOAI_BATCH_WORKSPACE", str(tmp_path))
    return tmp_path / "home"
