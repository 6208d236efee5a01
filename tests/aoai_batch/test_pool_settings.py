"""The runs' settings: `AOAI_BATCH_ENQUEUED_TOKENS` and the `AOAI_BATCH_POOL` file, read and shown without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aoai_batch.errors import InvalidInput, NotConfigured
from aoai_batch.settings import Settings, config_view, load_pool
from server.cli import main
from tests.support.cli import isolate_cli

KEY_VALUE = "west-secret-key-value"
POOL = """
[[deployments]]
name = "west-mini"
endpoint = "https://west.openai.azure.com/"
deployment = "gpt-4o-mini"
api_key_env = "WEST_KEY"
enqueued_tokens = "1.5M"

[[deployments]]
endpoint = "https://east.openai.azure.com"
deployment = "gpt-4o"
api_version = "2025-04-01-preview"
enqueued_tokens = 30000
"""


def write_pool(folder: Path, text: str = POOL) -> Path:
    path = folder / "pool.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_enqueued_tokens_are_read_with_suffixes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AOAI_BATCH_ENQUEUED_TOKENS", "gpt-4o-mini=1B,gpt-4o=200M,small=90K")
    assert Settings(home=tmp_path).enqueued_tokens == {"gpt-4o-mini": 10**9, "gpt-4o": 200_000_000, "small": 90_000}
    monkeypatch.delenv("AOAI_BATCH_ENQUEUED_TOKENS")
    assert Settings(home=tmp_path).enqueued_tokens == {}


@pytest.mark.parametrize("text", ["gpt-4o-mini", "gpt-4o-mini=many", "gpt-4o=1,gpt-4o=2"])
def test_bad_enqueued_tokens_are_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str
) -> None:
    monkeypatch.setenv("AOAI_BATCH_ENQUEUED_TOKENS", text)
    with pytest.raises(ValidationError) as caught:
        Settings(home=tmp_path)
    error = caught.value.errors()[0]
    assert error["loc"] == ("AOAI_BATCH_ENQUEUED_TOKENS",)
    assert "AOAI_BATCH_ENQUEUED_TOKENS" in error["msg"]


def test_the_cli_names_bad_enqueued_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("AOAI_BATCH_ENQUEUED_TOKENS", "gpt-4o-mini=lots")
    assert main(["config"]) == 1
    assert "AOAI_BATCH_ENQUEUED_TOKENS" in capsys.readouterr().err


def test_the_pool_file_becomes_typed_entries_with_their_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WEST_KEY", KEY_VALUE)
    monkeypatch.setenv("AOAI_BATCH_POOL", str(write_pool(tmp_path)))
    settings = Settings(home=tmp_path, api_version="2024-10-21")
    west, east = load_pool(settings)
    assert settings.pool_path == tmp_path / "pool.toml"
    assert (west.name, west.deployment, west.endpoint, west.auth) == (
        "west-mini",
        "gpt-4o-mini",
        "https://west.openai.azure.com",
        "key",
    )
    assert west.api_key is not None
    assert west.api_key.get_secret_value() == KEY_VALUE
    assert (west.api_version, west.enqueued_tokens) == ("2024-10-21", 1_500_000)
    assert (east.name, east.auth, east.api_key, east.api_version, east.enqueued_tokens) == (
        "gpt-4o",
        "entra",
        None,
        "2025-04-01-preview",
        30_000,
    )


def test_no_pool_file_is_no_entries(tmp_path: Path) -> None:
    assert load_pool(Settings(home=tmp_path)) == []


def test_a_missing_pool_file_is_not_configured(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured) as caught:
        load_pool(Settings(home=tmp_path, pool_path=tmp_path / "nowhere.toml"))
    assert caught.value.setting == "AOAI_BATCH_POOL"
    assert "nowhere.toml" in str(caught.value)


def test_an_unset_key_variable_is_not_configured_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEST_KEY", raising=False)
    with pytest.raises(NotConfigured) as caught:
        load_pool(Settings(home=tmp_path, pool_path=write_pool(tmp_path)))
    assert caught.value.setting == "WEST_KEY"
    assert "'west-mini'" in str(caught.value)


ENTRY = 'endpoint = "https://r.openai.azure.com"\ndeployment = "d"\nauth = "entra"\n'
BAD_POOLS = [
    ("not toml", "[[deployments]\n", "not valid TOML"),
    ("extra table", "[other]\nx = 1\n", "other"),
    ("deployments not tables", "deployments = [1, 2]\n", "[[deployments]] tables"),
    ("unknown key", f"[[deployments]]\n{ENTRY}api_key = 'k'\n", "entry 1 ('d'): unknown api_key"),
    ("no endpoint", '[[deployments]]\ndeployment = "d"\n', "entry 1 ('d'): `endpoint` is required"),
    ("bad endpoint", '[[deployments]]\nendpoint = "r.openai.azure.com"\ndeployment = "d"\n', "`endpoint` must be"),
    ("no deployment", '[[deployments]]\nendpoint = "https://r.openai.azure.com"\n', "`deployment` is required"),
    ("empty name", f'[[deployments]]\n{ENTRY}name = ""\n', "`name` must be a non-empty string"),
    ("bad auth", '[[deployments]]\nendpoint = "https://r.x"\ndeployment = "d"\nauth = "magic"\n', "key or entra"),
    ("key auth, no key", '[[deployments]]\nendpoint = "https://r.x"\ndeployment = "d"\nauth = "key"\n', "api_key_env"),
    ("a key, not a name", f'[[deployments]]\n{ENTRY}api_key_env = "sk-1234 5678"\n', "must name an environment"),
    ("bad tokens", f'[[deployments]]\n{ENTRY}enqueued_tokens = "lots"\n', "`enqueued_tokens`"),
    ("zero tokens", f"[[deployments]]\n{ENTRY}enqueued_tokens = 0\n", "at least 1"),
    ("float tokens", f"[[deployments]]\n{ENTRY}enqueued_tokens = 1.5\n", "number of tokens"),
    ("twice", f"[[deployments]]\n{ENTRY}\n[[deployments]]\n{ENTRY}", "names 'd' twice (entry 2)"),
]


@pytest.mark.parametrize(("case", "text", "says"), BAD_POOLS, ids=[case[0] for case in BAD_POOLS])
def test_a_bad_pool_file_is_an_error_naming_the_file_and_the_entry(
    tmp_path: Path, case: str, text: str, says: str
) -> None:
    path = write_pool(tmp_path, text)
    with pytest.raises(InvalidInput) as caught:
        load_pool(Settings(home=tmp_path, pool_path=path))
    assert type(caught.value) is InvalidInput
    assert str(path) in str(caught.value)
    assert says in str(caught.value)


def test_the_config_view_shows_the_pool_and_limits_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEST_KEY", KEY_VALUE)
    view = config_view(Settings(home=tmp_path, pool_path=write_pool(tmp_path), enqueued_tokens="gpt-4o-mini=1M"))
    assert view.enqueued_tokens == {"gpt-4o-mini": 1_000_000}
    assert view.pool is not None
    assert view.pool.error is None
    assert [(d.name, d.endpoint_host, d.api_key_env) for d in view.pool.deployments] == [
        ("west-mini", "west.openai.azure.com", "WEST_KEY"),
        ("gpt-4o", "east.openai.azure.com", None),
    ]
    assert KEY_VALUE not in view.model_dump_json()


def test_the_config_view_says_why_a_pool_file_cannot_be_used(tmp_path: Path) -> None:
    view = config_view(Settings(home=tmp_path, pool_path=write_pool(tmp_path, "[[deployments]\n")))
    assert view.pool is not None
    assert view.pool.deployments == []
    assert view.pool.error is not None
    assert "not valid TOML" in view.pool.error


def test_the_config_command_lists_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("WEST_KEY", KEY_VALUE)
    monkeypatch.setenv("AOAI_BATCH_POOL", str(write_pool(tmp_path)))
    monkeypatch.setenv("AOAI_BATCH_ENQUEUED_TOKENS", "gpt-4o-mini=1000000")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "gpt-4o-mini=1M" in out
    assert "west-mini: gpt-4o-mini on west.openai.azure.com, key (WEST_KEY), 1.5M enqueued tokens" in out
    assert "gpt-4o: gpt-4o on east.openai.azure.com, entra, 30K enqueued tokens" in out
    assert KEY_VALUE not in out
