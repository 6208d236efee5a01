"""Settings: the only place that reads the environment (SPEC §2 and §6)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Provider = Literal["azure", "openai", "emulator"]
AuthMode = Literal["auto", "key", "entra"]

DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_TOKEN_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_DEPLOYMENTS = "gpt-4o-mini=gpt-4o-mini-2024-07-18,gpt-4o=gpt-4o-2024-08-06"


def _default_home() -> Path:
    return Path(user_data_dir("aoai-batch-mcp", appauthor=False))


def _default_workspace() -> str:
    return str(Path.home() / "aoai-batch")


class Settings(BaseSettings):
    """What the server, the CLI and the client are configured with."""

    # An empty variable counts as unset: MCP clients (and bundle user_config) pass blanks for optional fields.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

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
    max_requests: int = Field(100_000, gt=0, validation_alias=AliasChoices("AOAI_BATCH_MAX_REQUESTS", "max_requests"))
    max_bytes: int = Field(200_000_000, gt=0, validation_alias=AliasChoices("AOAI_BATCH_MAX_BYTES", "max_bytes"))
    file_expiry_days: int = Field(
        14, ge=14, le=30, validation_alias=AliasChoices("AOAI_BATCH_FILE_EXPIRY_DAYS", "file_expiry_days")
    )
    http_token: SecretStr | None = Field(None, validation_alias=AliasChoices("AOAI_BATCH_HTTP_TOKEN", "http_token"))

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
    def state_db(self) -> Path:
        return self.home / "state.sqlite3"

    @property
    def emulator_home(self) -> Path:
        return self.home / "emulator"


Engine = Literal["echo", "forward"]
WireFormat = Literal["standard", "legacy"]


class EmulatorSettings(BaseSettings):
    """The emulator's configuration (SPEC §6), shared by the standalone and the embedded emulator."""

    model_config = SettingsConfigDict(
        env_prefix="AOAI_EMULATOR_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    key: SecretStr | None = None
    deployments: str = DEFAULT_DEPLOYMENTS
    time_scale: float = Field(600.0, gt=0)
    engine: Engine = "echo"
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
    max_requests: int = Field(100_000, gt=0)
    max_bytes: int = Field(200_000_000, gt=0)

    @property
    def deployment_models(self) -> dict[str, str]:
        """Deployment name -> model name."""
        models: dict[str, str] = {}
        for item in self.deployments.split(","):
            name, _, model = item.partition("=")
            if name.strip():
                models[name.strip()] = model.strip() or name.strip()
        return models
