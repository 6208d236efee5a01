"""Settings read only the variables they name: never `HOME` for the home, never `KEY` for a key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from aoai_batch.errors import NotConfigured
from aoai_batch.settings import EmulatorSettings, OAuthSettings, Settings, config_view, variable_names

SETTINGS_CLASSES: list[type[BaseSettings]] = [Settings, EmulatorSettings]
PREFIXES = ("AOAI_BATCH_", "AOAI_EMULATOR_", "AZURE_OPENAI_", "OPENAI_")


def _clear_named_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in SETTINGS_CLASSES:
        for field_name in cls.model_fields:
            for name in variable_names(cls, field_name):
                monkeypatch.delenv(name, raising=False)


def _keywords(cls: type[BaseSettings]) -> set[str]:
    """Every name the constructor takes: the field names and their lower-case aliases."""
    names = set(cls.model_fields)
    for field in cls.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        names.update(choice for choice in choices if isinstance(choice, str) and not choice.isupper())
    return names


@pytest.mark.parametrize("cls", SETTINGS_CLASSES)
def test_every_variable_read_has_the_products_prefix(cls: type[BaseSettings]) -> None:
    for field_name in cls.model_fields:
        for name in variable_names(cls, field_name):
            assert name.isupper(), (field_name, name)
            assert name.startswith(PREFIXES), (field_name, name)


@pytest.mark.parametrize("cls", SETTINGS_CLASSES)
def test_a_variable_named_like_a_keyword_is_not_read(
    cls: type[BaseSettings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HOME, WORKSPACE, AUTH, KEY, FORMAT, ENGINE, API_KEY, ...: names other programs set.
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    expected = cls(home=tmp_path).model_dump()
    named = {name for field_name in cls.model_fields for name in variable_names(cls, field_name)}
    for keyword in _keywords(cls) - {"home"}:
        for name in {keyword, keyword.upper()} - named:  # OPENAI_API_KEY is both a keyword and a variable
            monkeypatch.setenv(name, "not-a-setting")

    assert cls(home=tmp_path).model_dump() == expected
    assert cls().model_dump()["home"] != tmp_path / "user"


def test_home_is_the_platform_data_dir_not_the_users_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)

    settings, emulator = Settings(), EmulatorSettings()

    for folder in (settings.home, settings.state_db.parent, settings.emulator_home, emulator.home):
        assert folder != tmp_path
        assert folder.is_relative_to(tmp_path / ".local" / "share" / "aoai-batch-mcp")
    assert emulator.home == settings.emulator_home


def test_only_the_prefixed_variables_set_the_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("AOAI_BATCH_HOME", str(tmp_path / "batch"))
    monkeypatch.setenv("AOAI_EMULATOR_HOME", str(tmp_path / "emu"))

    assert Settings().home == tmp_path / "batch"
    assert EmulatorSettings().home == tmp_path / "emu"


def test_a_keyword_wins_over_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("AOAI_BATCH_HOME", str(tmp_path / "from-env"))
    monkeypatch.setenv("AOAI_BATCH_PROVIDER", "azure")
    monkeypatch.setenv("AOAI_EMULATOR_FORMAT", "legacy")

    settings = Settings(home=tmp_path / "given", provider="openai", poll_seconds=90)
    emulator = EmulatorSettings(home=tmp_path / "given", format="standard")

    assert (settings.home, settings.provider, settings.poll_seconds) == (tmp_path / "given", "openai", 90)
    assert (emulator.home, emulator.format) == (tmp_path / "given", "standard")


def test_a_blank_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "")
    monkeypatch.setenv("AOAI_BATCH_MAX_REQUESTS", "")
    monkeypatch.setenv("AOAI_EMULATOR_TIME_SCALE", "")

    assert Settings().provider == "emulator"
    assert Settings().max_requests == Settings.model_fields["max_requests"].default
    assert EmulatorSettings().time_scale == EmulatorSettings.model_fields["time_scale"].default


def test_the_second_api_version_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("OPENAI_API_VERSION", "v1")

    assert Settings().api_version == "v1"


@pytest.mark.parametrize(
    ("values", "auth_in_use"),
    [
        ({}, "key"),
        ({"endpoint": "https://r.openai.azure.com"}, "entra"),
        ({"endpoint": "https://r.openai.azure.com", "api_key": "k"}, "key"),
        ({"endpoint": "https://r.openai.azure.com", "api_key": "k", "auth": "entra"}, "entra"),
        ({"openai_api_key": "sk"}, "key"),
        ({"provider": "emulator", "endpoint": "http://127.0.0.1:8765"}, "key"),
    ],
)
def test_the_config_view_says_how_requests_are_signed(
    values: dict[str, str], auth_in_use: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_named_variables(monkeypatch)
    view = config_view(Settings(home=tmp_path, **values))  # type: ignore[arg-type]

    assert view.auth_in_use == auth_in_use


def test_the_config_view_says_where_things_are_without_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_named_variables(monkeypatch)
    secrets = {"api_key": "azure-secret", "openai_api_key": "sk-secret", "http_token": "http-secret"}
    settings = Settings(home=tmp_path / "home", workspace=str(tmp_path / "ws"), provider="emulator", **secrets)  # type: ignore[arg-type]

    view = config_view(settings)

    assert view.state_path == str(tmp_path / "home" / "state.sqlite3")
    assert view.emulator_home == str(tmp_path / "home" / "emulator")
    assert view.workspace == [str(tmp_path / "ws")]
    assert view.api_key_configured is True
    text = view.model_dump_json()
    for secret in secrets.values():
        assert secret not in text


def test_the_config_view_of_azure_names_the_host_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_named_variables(monkeypatch)
    settings = Settings(home=tmp_path, endpoint="https://res.openai.azure.com/openai?x=1")

    view = config_view(settings)

    assert (view.backend, view.endpoint_host) == ("azure", "res.openai.azure.com")
    assert view.emulator_home is None
    assert view.emulator_deployments is None
    assert view.poll_seconds == 60


def test_the_deployment_models_and_the_price_file_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOAI_BATCH_DEPLOYMENT_MODELS", "batch-mini = gpt-4o-mini-2024-07-18, big=gpt-4o,")
    monkeypatch.setenv("AOAI_BATCH_PRICES", str(tmp_path / "prices.toml"))

    settings = Settings()

    assert settings.deployment_models == {"batch-mini": "gpt-4o-mini-2024-07-18", "big": "gpt-4o"}
    assert settings.prices_path == tmp_path / "prices.toml"


@pytest.mark.parametrize("value", ["batch-mini", "=gpt-4o", "a=gpt-4o,b="])
def test_a_deployment_model_that_is_not_name_equals_model_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("AOAI_BATCH_DEPLOYMENT_MODELS", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == ("AOAI_BATCH_DEPLOYMENT_MODELS",)


@pytest.mark.parametrize(
    ("variables", "setting"),
    [
        ({"AOAI_BATCH_OAUTH_ISSUER": "https://login.example.com/t/v2.0"}, "AOAI_BATCH_OAUTH_AUDIENCE"),
        ({"AOAI_BATCH_OAUTH_AUDIENCE": "api://x"}, "AOAI_BATCH_OAUTH_ISSUER"),
        (
            {
                "AOAI_BATCH_OAUTH_ISSUER": "https://login.example.com/t/v2.0",
                "AOAI_BATCH_OAUTH_AUDIENCE": "api://x",
                "AOAI_BATCH_HTTP_TOKEN": "s3cret",
            },
            "AOAI_BATCH_HTTP_TOKEN",
        ),
    ],
)
def test_sign_in_half_configured_or_beside_the_static_token_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], setting: str
) -> None:
    _clear_named_variables(monkeypatch)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(NotConfigured) as raised:
        _ = Settings().sign_in
    assert raised.value.setting == setting


def test_sign_in_is_read_from_its_variables_and_shown_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("AOAI_BATCH_OAUTH_ISSUER", "https://login.example.com/t/v2.0")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_AUDIENCE", "api://x")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_JWKS_URL", "https://login.example.com/t/keys")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_SCOPES", "batches.use, batches.read  other")
    monkeypatch.setenv("AOAI_BATCH_READ_ONLY", "true")
    settings = Settings(home=tmp_path)
    expected = OAuthSettings(
        issuer="https://login.example.com/t/v2.0",
        audience="api://x",
        jwks_url="https://login.example.com/t/keys",
        scopes=["batches.use", "batches.read", "other"],
    )
    assert settings.sign_in == expected
    view = config_view(settings)
    assert (view.sign_in, view.read_only, view.http_token_configured) == (expected, True, False)
    assert (settings.shared_jobs, view.shared_jobs) == (False, False)
    monkeypatch.setenv("AOAI_BATCH_SHARED_JOBS", "true")
    assert config_view(Settings(home=tmp_path)).shared_jobs is True


def test_sign_in_is_off_by_default_and_the_static_token_only_shows_as_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_named_variables(monkeypatch)
    monkeypatch.setenv("AOAI_BATCH_HTTP_TOKEN", "s3cret-token")
    settings = Settings(home=tmp_path)
    view = config_view(settings)
    assert settings.sign_in is None
    assert (view.sign_in, view.http_token_configured, view.read_only) == (None, True, False)
    assert "s3cret-token" not in view.model_dump_json()
