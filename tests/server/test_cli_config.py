"""`aoai-batch-mcp config`, and where the real CLI leaves its state when only `HOME` is set."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from openai import AzureOpenAI

from aoai_batch.settings import ConfigView, Settings, config_view
from server.cli import main
from tests.support.cli import isolate_cli
from tests.support.clients import API_VERSION

SECRETS = {
    "AZURE_OPENAI_API_KEY": "azure-key-value",
    "AOAI_BATCH_HTTP_TOKEN": "http-token-value",
    "OPENAI_API_KEY": "sk-openai-value",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = isolate_cli(tmp_path, monkeypatch)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AOAI_BATCH_PROVIDER", "emulator")
    return home


def test_config_json_is_the_config_view(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--json"]) == 0

    shown = ConfigView.model_validate_json(capsys.readouterr().out)
    assert shown == config_view(Settings())
    assert shown.state_path == str(home / "state.sqlite3")
    assert shown.emulator_home == str(home / "emulator")
    assert shown.workspace == [str(tmp_path)]


@pytest.mark.parametrize("argv", [["config"], ["config", "--json"]])
def test_config_shows_no_secret(home: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0

    out = capsys.readouterr().out
    assert out.strip()
    for secret in SECRETS.values():
        assert secret not in out


def test_config_table_names_where_things_are(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0

    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert rows["state"] == str(home / "state.sqlite3")
    assert rows["emulator data"] == str(home / "emulator")
    assert rows["backend"] == "emulator"
    assert rows["api key"] == "configured"


def test_an_invalid_setting_is_named_not_shown(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOAI_BATCH_MAX_REQUESTS", "lots")

    assert main(["config"]) == 1


def _env_with_only_home(home: Path) -> dict[str, str]:
    """The caller's environment with none of this product's variables, and `HOME` (alone) set to `home`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AOAI_", "AZURE_", "OPENAI_")) and name not in {"XDG_DATA_HOME", "APPDATA"}
    }
    env["HOME"] = str(home)
    return env


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the platform data dir under HOME is Linux's ~/.local/share")
def test_the_cli_keeps_its_state_in_the_data_dir_not_in_home(tmp_path: Path) -> None:
    env = _env_with_only_home(tmp_path)

    done = subprocess.run(
        [sys.executable, "-m", "server", "list", "--json"], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".local"]
    data = tmp_path / ".local" / "share" / "aoai-batch-mcp"
    assert (data / "state.sqlite3").is_file()
    assert (data / "emulator").is_dir()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the platform data dir under HOME is Linux's ~/.local/share")
def test_the_standalone_emulator_keeps_its_state_in_the_data_dir_not_in_home(tmp_path: Path) -> None:
    env = _env_with_only_home(tmp_path)
    command = [sys.executable, "-m", "server", "emulator", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:\d+", first)
            assert match is not None, first
            # Retried until it listens; an answer means its state is open.
            with AzureOpenAI(
                azure_endpoint=match.group(0), api_key="any", api_version=API_VERSION, max_retries=5
            ) as client:
                assert client.files.list().data == []
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)

    data = tmp_path / ".local" / "share" / "aoai-batch-mcp" / "emulator"
    assert f"state in {data}" in first
    assert sorted(p.name for p in tmp_path.iterdir()) == [".local"]
    assert (data / "files").is_dir()


def test_config_table_shows_sign_in_and_read_only(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AOAI_BATCH_HTTP_TOKEN")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_ISSUER", "https://login.example.com/t/v2.0")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_AUDIENCE", "api://x")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_JWKS_URL", "https://login.example.com/t/keys")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_SCOPES", "batches.use")
    monkeypatch.setenv("AOAI_BATCH_READ_ONLY", "1")
    assert main(["config"]) == 0

    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["sign-in", "issuer", "https://login.example.com/t/v2.0"] in lines
    assert ["audience", "api://x"] in lines
    assert ["keys", "https://login.example.com/t/keys"] in lines
    assert ["scopes", "batches.use"] in lines
    assert ["tools", "read-only"] in lines
    assert ["jobs", "each", "signed-in", "user's", "own"] in lines
    assert ["http", "token", "not", "set"] in lines
