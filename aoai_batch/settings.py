"""Settings: the only place that reads the environment (SPEC §2 and §6).

A field is read from the environment only under the names written in UPPER CASE in this module (its
upper-case aliases, or the class's prefix + its name); its lower-case aliases are keywords for the
constructor only. pydantic-settings' own source would also try those keywords as variable names,
case-insensitively, so `HOME` became `AOAI_BATCH_HOME` and `KEY` the emulator's key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from platformdirs import user_data_dir
from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from aoai_batch.errors import AuthInUse, InvalidInput, NotConfigured
from aoai_batch.limits import (
    DEFAULT_COMPLETION_WINDOW,
    DEFAULT_FILE_EXPIRY_DAYS,
    DEFAULT_LIMITS,
    MAX_FILE_EXPIRY_DAYS,
    MIN_FILE_EXPIRY_DAYS,
    FileRules,
)
from aoai_batch.pool_file import PoolAuth, PoolEntry, read_pool
from aoai_batch.quota import parse_token_limits

Provider = Literal["azure", "openai", "emulator"]
AuthMode = Literal["auto", "key", "entra"]

DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_TOKEN_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_DEPLOYMENTS = "gpt-4o-mini=gpt-4o-mini-2024-07-18,gpt-4o=gpt-4o-2024-08-06"


def name_model_pairs(text: str) -> dict[str, str]:
    """`name=model,name=model` as a dict; ValueError naming an entry that is not `name=model`."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, model = item.partition("=")
        if not sep or not name.strip() or not model.strip():
            raise ValueError(f"expected name=model entries separated by commas, got {item.strip()!r}")
        pairs[name.strip()] = model.strip()
    return pairs


def _default_home() -> Path:
    return Path(user_data_dir("aoai-batch-mcp", appauthor=False))


def _default_workspace() -> str:
    return str(Path.home() / "aoai-batch")


def _aliases(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


def variable_names(settings_cls: type[BaseSettings], field_name: str) -> list[str]:
    """The environment variables a field is read from, in order of preference (none: constructor only)."""
    field = settings_cls.model_fields[field_name]
    aliases = _aliases(field)
    if aliases:
        return [alias for alias in aliases if alias.isupper()]
    return [f"{settings_cls.model_config.get('env_prefix', '')}{field_name}".upper()]


class NamedVariables(PydanticBaseSettingsSource):
    """The environment, each field read only under its `variable_names`; an empty variable counts as unset."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # The key is the one the constructor's keywords are normalised to, so a keyword still wins.
        key = (_aliases(field) or [field_name])[0]
        for name in variable_names(self.settings_cls, field_name):
            value = os.environ.get(name)
            if value:  # blank is unset: MCP clients (and bundle user_config) pass blanks for optional fields
                return value, key, False
        return None, key, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                found[key] = value
        return found


class _FromNamedVariables(BaseSettings):
    """Constructor keywords first, then the named environment variables; no other source."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, NamedVariables(settings_cls)


def token_limits(value: object, variable: str) -> object:
    """A `name=tokens,...` text as {deployment: tokens} (anything else is left to the field's type).

    Raises ValueError naming `variable` and what is wrong with the text.
    """
    if not isinstance(value, str):
        return value
    try:
        return parse_token_limits(value)
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from None


class OAuthSettings(BaseModel):
    """How `serve --transport http` checks a signed-in user's token (none of it is secret)."""

    issuer: str = Field(description="AOAI_BATCH_OAUTH_ISSUER: the token's `iss`; its discovery document gives the keys")
    audience: str = Field(description="AOAI_BATCH_OAUTH_AUDIENCE: the token's `aud` (Entra: the app's client id)")
    jwks_url: str | None = Field(description="AOAI_BATCH_OAUTH_JWKS_URL: the keys, instead of the discovery document")
    scopes: list[str] = Field(description="AOAI_BATCH_OAUTH_SCOPES: every one must be in the token")


class Settings(_FromNamedVariables):
    """What the server, the CLI and the client are configured with."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    endpoint: str | None = Field(None, validation_alias=AliasChoices("AZURE_OPENAI_ENDPOINT", "endpoint"))
    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("AZURE_OPENAI_API_KEY", "api_key"))
    api_version: str = Field(
        DEFAULT_API_VERSION,
        validation_alias=AliasChoices("AZURE_OPENAI_API_VERSION", "OPENAI_API_VERSION", "api_version"),
    )
    auth: AuthMode = Field("auto", validation_alias=AliasChoices("AOAI_BATCH_AUTH", "auth"))
    token_scope: str = Field(
        DEFAULT_TOKEN_SCOPE, validation_alias=AliasChoices("AOAI_BATCH_TOKEN_SCOPE", "token_scope")
    )
    provider_override: Provider | None = Field(None, validation_alias=AliasChoices("AOAI_BATCH_PROVIDER", "provider"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))
    openai_base_url: str | None = Field(None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url"))
    home: Path = Field(default_factory=_default_home, validation_alias=AliasChoices("AOAI_BATCH_HOME", "home"))
    workspace: str = Field(
        default_factory=_default_workspace, validation_alias=AliasChoices("AOAI_BATCH_WORKSPACE", "workspace")
    )
    poll_seconds_override: float | None = Field(
        None, gt=0, validation_alias=AliasChoices("AOAI_BATCH_POLL_SECONDS", "poll_seconds")
    )
    max_requests: int = Field(
        DEFAULT_LIMITS.max_requests, gt=0, validation_alias=AliasChoices("AOAI_BATCH_MAX_REQUESTS", "max_requests")
    )
    max_bytes: int = Field(
        DEFAULT_LIMITS.max_bytes, gt=0, validation_alias=AliasChoices("AOAI_BATCH_MAX_BYTES", "max_bytes")
    )
    file_expiry_days: int = Field(
        DEFAULT_FILE_EXPIRY_DAYS,
        ge=MIN_FILE_EXPIRY_DAYS,
        le=MAX_FILE_EXPIRY_DAYS,
        validation_alias=AliasChoices("AOAI_BATCH_FILE_EXPIRY_DAYS", "file_expiry_days"),
    )
    http_token: SecretStr | None = Field(None, validation_alias=AliasChoices("AOAI_BATCH_HTTP_TOKEN", "http_token"))
    # Team server (SPEC §10): signed-in users over HTTP, and read-only serving.
    oauth_issuer: str | None = Field(None, validation_alias=AliasChoices("AOAI_BATCH_OAUTH_ISSUER", "oauth_issuer"))
    oauth_audience: str | None = Field(
        None, validation_alias=AliasChoices("AOAI_BATCH_OAUTH_AUDIENCE", "oauth_audience")
    )
    oauth_jwks_url: str | None = Field(
        None, validation_alias=AliasChoices("AOAI_BATCH_OAUTH_JWKS_URL", "oauth_jwks_url")
    )
    oauth_scopes_text: str | None = Field(
        None, validation_alias=AliasChoices("AOAI_BATCH_OAUTH_SCOPES", "oauth_scopes")
    )
    read_only: bool = Field(False, validation_alias=AliasChoices("AOAI_BATCH_READ_ONLY", "read_only"))
    # Signed-in users see and change only their own jobs unless this is on (then everyone's; SPEC §10).
    shared_jobs: bool = Field(False, validation_alias=AliasChoices("AOAI_BATCH_SHARED_JOBS", "shared_jobs"))
    # Runs (SPEC §9): the enqueued-token limit per deployment (name -> tokens; none: unknown), and a pool file
    # of deployments on other resources.
    enqueued_tokens: dict[str, int] = Field(
        default_factory=dict, validation_alias=AliasChoices("AOAI_BATCH_ENQUEUED_TOKENS", "enqueued_tokens")
    )
    pool_path: Path | None = Field(None, validation_alias=AliasChoices("AOAI_BATCH_POOL", "pool_path"))

    @field_validator("enqueued_tokens", mode="before")
    @classmethod
    def _read_token_limits(cls, value: object) -> object:
        return token_limits(value, "AOAI_BATCH_ENQUEUED_TOKENS")

    @field_validator("pool_path")
    @classmethod
    def _expand_pool_path(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    deployment_models_text: str | None = Field(
        None, validation_alias=AliasChoices("AOAI_BATCH_DEPLOYMENT_MODELS", "deployment_models")
    )
    prices_path: Path | None = Field(None, validation_alias=AliasChoices("AOAI_BATCH_PRICES", "prices"))
    database_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AOAI_BATCH_DATABASE_URL", "database_url")
    )  # the job registry on PostgreSQL (a team server's replicas share it); unset: SQLite under the home

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlparse(value.get_secret_value()).scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "must be a PostgreSQL URL, e.g. postgresql://aoai:PASSWORD@db.example.com:5432/aoai_batch "
                "(unset it to keep the registry in SQLite under AOAI_BATCH_HOME)"
            )
        return value

    @field_validator("deployment_models_text")
    @classmethod
    def _pairs(cls, text: str | None) -> str | None:
        if text is not None:
            name_model_pairs(text)
        return text

    @property
    def deployment_models(self) -> dict[str, str]:
        """AOAI_BATCH_DEPLOYMENT_MODELS: deployment name -> the model it runs (empty when unset)."""
        return name_model_pairs(self.deployment_models_text or "")

    @field_validator("oauth_issuer", "oauth_jwks_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
            raise ValueError("must be an http(s) URL, e.g. https://login.microsoftonline.com/TENANT/v2.0")
        return value

    @property
    def provider(self) -> Provider:
        """The backend in use: explicit, else endpoint -> azure, only an OpenAI key -> openai, else emulator."""
        if self.provider_override:
            return self.provider_override
        if self.endpoint:
            return "azure"
        if self.openai_api_key:
            return "openai"
        return "emulator"

    @property
    def poll_seconds(self) -> float:
        """The watcher's interval; never faster than 60 s against a real service."""
        if self.provider == "emulator":
            return self.poll_seconds_override or 1.0
        return max(self.poll_seconds_override or 60.0, 60.0)

    @property
    def workspace_dirs(self) -> list[Path]:
        """The workspace folders, the first being where generated files go."""
        parts = [p for p in self.workspace.split(os.pathsep) if p.strip()]
        return [Path(p).expanduser().resolve() for p in parts] or [Path(_default_workspace()).resolve()]

    @property
    def embedded_emulator(self) -> bool:
        """Whether the emulator runs in this process (no endpoint to reach)."""
        return self.provider == "emulator" and not self.endpoint

    @property
    def oauth_scopes(self) -> list[str]:
        """AOAI_BATCH_OAUTH_SCOPES, space or comma separated: every one must be in a signed-in user's token."""
        return [scope for scope in (self.oauth_scopes_text or "").replace(",", " ").split() if scope]

    @property
    def sign_in(self) -> OAuthSettings | None:
        """Signed-in users over HTTP (SPEC §10), or None when off.

        Raises:
            NotConfigured: only one of the issuer and the audience is set, or AOAI_BATCH_HTTP_TOKEN is set too
                (two guards on one server would leave it unclear which one a client must satisfy).
        """
        if not (self.oauth_issuer or self.oauth_audience):
            return None
        if not self.oauth_issuer:
            raise NotConfigured(
                "AOAI_BATCH_OAUTH_AUDIENCE is set but AOAI_BATCH_OAUTH_ISSUER is not.",
                setting="AOAI_BATCH_OAUTH_ISSUER",
            )
        if not self.oauth_audience:
            raise NotConfigured(
                "AOAI_BATCH_OAUTH_ISSUER is set but AOAI_BATCH_OAUTH_AUDIENCE is not.",
                setting="AOAI_BATCH_OAUTH_AUDIENCE",
            )
        if self.http_token is not None:
            raise NotConfigured(
                "Both AOAI_BATCH_HTTP_TOKEN and AOAI_BATCH_OAUTH_ISSUER are set: signed-in users replace the "
                "static token.",
                setting="AOAI_BATCH_HTTP_TOKEN",
            )
        return OAuthSettings(
            issuer=self.oauth_issuer,
            audience=self.oauth_audience,
            jwks_url=self.oauth_jwks_url,
            scopes=self.oauth_scopes,
        )

    @property
    def state_db(self) -> Path:
        return self.home / "state.sqlite3"

    @property
    def emulator_home(self) -> Path:
        return self.home / "emulator"


EngineName = Literal["echo", "forward"]
WireFormat = Literal["standard", "legacy"]
QuotaMode = Literal["fail_fast", "validate"]
"""How the emulator says a deployment's enqueued tokens are used up, as Azure does in one region or another:
`fail_fast` refuses the create (HTTP 400 `token_limit_exceeded`); `validate` accepts the batch, which then
fails in validation with that code."""


class EmulatorSettings(_FromNamedVariables):
    """The emulator's configuration (SPEC §6), shared by the standalone and the embedded emulator."""

    model_config = SettingsConfigDict(env_prefix="AOAI_EMULATOR_", extra="ignore", populate_by_name=True)

    key: SecretStr | None = None
    deployments: str = DEFAULT_DEPLOYMENTS
    time_scale: float = Field(600.0, gt=0)
    engine: EngineName = "echo"
    forward_url: str | None = None
    forward_key: SecretStr | None = None
    fail_rate: float = Field(0.0, ge=0, le=1)
    faults: str = ""
    format: WireFormat = "standard"
    home: Path = Field(
        default_factory=lambda: _default_home() / "emulator",
        validation_alias=AliasChoices("AOAI_EMULATOR_HOME", "home"),
    )
    # Emulator-only knobs (additive; the emulator's own). Durations are emulated seconds (divided by time_scale).
    no_output_when_all_failed: bool = False
    forward_model: str | None = None
    forward_concurrency: int = Field(8, ge=1, le=256)
    forward_timeout: float = Field(60.0, gt=0)
    fault_seed: int = 0
    validation_seconds: float = Field(300.0, ge=0)
    seconds_per_request: float = Field(60.0, ge=0)
    max_processing_seconds: float = Field(4 * 3600.0, ge=0)
    finalizing_seconds: float = Field(300.0, ge=0)
    cancelling_seconds: float = Field(60.0, ge=0)
    file_processing_seconds: float = Field(0.0, ge=0)
    max_files_without_expiry: int = Field(500, ge=0)
    max_requests: int = Field(DEFAULT_LIMITS.max_requests, gt=0)
    max_bytes: int = Field(DEFAULT_LIMITS.max_bytes, gt=0)
    # The enqueued-token quota (SPEC §9): deployment -> tokens its batches not yet terminal may hold; none: no limit.
    enqueued_tokens: dict[str, int] = Field(default_factory=dict)
    quota_mode: QuotaMode = "fail_fast"

    @field_validator("enqueued_tokens", mode="before")
    @classmethod
    def _read_token_limits(cls, value: object) -> object:
        return token_limits(value, "AOAI_EMULATOR_ENQUEUED_TOKENS")

    @property
    def deployment_models(self) -> dict[str, str]:
        """Deployment name -> model name."""
        models: dict[str, str] = {}
        for item in self.deployments.split(","):
            name, _, model = item.partition("=")
            if name.strip():
                models[name.strip()] = model.strip() or name.strip()
        return models


class Limits(BaseModel):
    max_requests: int
    max_bytes: int
    file_expiry_days: int
    completion_window: str = DEFAULT_COMPLETION_WINDOW


class PoolEntryView(BaseModel):
    """A pool file's deployment as shown: the name of its key variable, never the key."""

    name: str
    deployment: str
    endpoint_host: str
    auth: PoolAuth
    api_key_env: str | None = Field(description="the variable holding its key (its name only)")
    api_version: str
    enqueued_tokens: int | None


class PoolView(BaseModel):
    path: str = Field(description="AOAI_BATCH_POOL: the pool file")
    deployments: list[PoolEntryView]
    error: str | None = Field(None, description="why the file could not be used, if it cannot")


class ConfigView(BaseModel):
    """The resolved settings a user may see (`batch://config`, `aoai-batch-mcp config`): never a key or token."""

    backend: Provider
    endpoint_host: str | None = Field(description="the service's host name; null on the embedded emulator")
    api_version: str
    auth: AuthMode = Field(description="the auth mode asked for (AOAI_BATCH_AUTH)")
    auth_in_use: AuthInUse = Field(description="how requests are signed: an api key or Entra ID")
    api_key_configured: bool
    home: str = Field(description="AOAI_BATCH_HOME: the state database and the embedded emulator's data")
    state_path: str = Field(description="the job registry: the SQLite file, or the PostgreSQL URL without its password")
    emulator_home: str | None = Field(description="the embedded emulator's data; null on another backend")
    emulator_deployments: list[str] | None
    workspace: list[str] = Field(description="the folders the tools may read and write; the first gets new files")
    limits: Limits
    poll_seconds: float = Field(description="the background watcher's interval")
    http_token_configured: bool = Field(False, description="AOAI_BATCH_HTTP_TOKEN is set (HTTP clients send it)")
    sign_in: OAuthSettings | None = Field(None, description="signed-in users over HTTP; null when off")
    read_only: bool = Field(False, description="only the tools that change nothing are served")
    shared_jobs: bool = Field(False, description="every signed-in user sees every job (else only their own)")

    enqueued_tokens: dict[str, int] = Field(
        default_factory=dict, description="AOAI_BATCH_ENQUEUED_TOKENS: enqueued-token limit per deployment"
    )
    pool: PoolView | None = Field(None, description="the deployments of the AOAI_BATCH_POOL file; null when unset")


def is_http_url(text: str) -> bool:
    """An absolute http(s) URL with a host: an issuer, a key set, the URL clients reach the server at."""
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def known_deployments(settings: Settings) -> list[str] | None:
    """The sorted deployment names of the backend `settings` select, or None when they cannot be known.

    The embedded emulator's are its configured ones. Azure's and OpenAI's data planes have no list of
    deployments (and an out-of-process emulator is configured elsewhere), so there a name is not checked.
    """
    if settings.embedded_emulator:
        return sorted(EmulatorSettings(home=settings.emulator_home).deployment_models)
    return None


def file_rules(settings: Settings) -> FileRules:
    """The rules build, validate and upload check a file against: the settings' limits, the backend's deployments."""
    known = known_deployments(settings)
    return FileRules(
        max_requests=settings.max_requests,
        max_bytes=settings.max_bytes,
        deployments=tuple(known) if known is not None else None,
    )


def _registry_shown(settings: Settings) -> str:
    """The SQLite file, or the PostgreSQL URL with its password masked."""
    if settings.database_url is None:
        return str(settings.state_db)
    parts = urlparse(settings.database_url.get_secret_value())
    if parts.password is None:
        return parts.geturl()
    return parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[1]}").geturl()


def config_view(settings: Settings) -> ConfigView:
    """What `settings` resolve to, for people: where things are and which backend, without any secret."""
    endpoint = settings.endpoint or settings.openai_base_url
    embedded = settings.embedded_emulator
    return ConfigView(
        backend=settings.provider,
        endpoint_host=urlparse(endpoint).hostname if endpoint else None,
        api_version=settings.api_version,
        auth=settings.auth,
        auth_in_use=_auth_in_use(settings),
        api_key_configured=settings.api_key is not None or settings.openai_api_key is not None,
        home=str(settings.home),
        state_path=_registry_shown(settings),
        emulator_home=str(settings.emulator_home) if embedded else None,
        emulator_deployments=known_deployments(settings),
        workspace=[str(folder) for folder in settings.workspace_dirs],
        limits=Limits(
            max_requests=settings.max_requests,
            max_bytes=settings.max_bytes,
            file_expiry_days=settings.file_expiry_days,
        ),
        poll_seconds=settings.poll_seconds,
        http_token_configured=settings.http_token is not None,
        sign_in=_sign_in_shown(settings),
        read_only=settings.read_only,
        shared_jobs=settings.shared_jobs,
        enqueued_tokens=settings.enqueued_tokens,
        pool=_pool_view(settings),
    )


def _sign_in_shown(settings: Settings) -> OAuthSettings | None:
    """The sign-in settings as given, even half-given (what `serve` would refuse is still shown)."""
    if not (settings.oauth_issuer or settings.oauth_audience):
        return None
    return OAuthSettings(
        issuer=settings.oauth_issuer or "",
        audience=settings.oauth_audience or "",
        jwks_url=settings.oauth_jwks_url,
        scopes=settings.oauth_scopes,
    )


def load_pool(settings: Settings) -> list[PoolEntry]:
    """The deployments of the `AOAI_BATCH_POOL` file (none when unset), their key variables read here.

    Raises:
        NotConfigured: the file does not exist, or an entry's key variable is not set (`setting` names it).
        InvalidInput: the file is not TOML, or an entry is wrong (the message names the file and the entry).
    """
    if settings.pool_path is None:
        return []
    return read_pool(settings.pool_path, api_version=settings.api_version, key_of=_secret_variable)


def _secret_variable(name: str) -> SecretStr | None:
    value = os.environ.get(name)
    return SecretStr(value) if value else None  # blank is unset, as for every setting


def _pool_view(settings: Settings) -> PoolView | None:
    if settings.pool_path is None:
        return None
    try:
        entries = load_pool(settings)
    except InvalidInput as exc:  # shown, so `config` is where a broken pool file is diagnosed
        return PoolView(path=str(settings.pool_path), deployments=[], error=str(exc))
    views = [
        PoolEntryView(
            name=entry.name,
            deployment=entry.deployment,
            endpoint_host=entry.endpoint_host,
            auth=entry.auth,
            api_key_env=entry.api_key_env,
            api_version=entry.api_version,
            enqueued_tokens=entry.enqueued_tokens,
        )
        for entry in entries
    ]
    return PoolView(path=str(settings.pool_path), deployments=views)


def _auth_in_use(settings: Settings) -> AuthInUse:
    """As the client will sign (aoai_batch.client.connection): Entra ID when asked, or on Azure with no key."""
    if settings.provider == "openai" or settings.embedded_emulator:
        return "key"
    if settings.auth == "entra":
        return "entra"
    if settings.api_key is not None or settings.provider == "emulator" or settings.auth == "key":
        return "key"
    return "entra"
