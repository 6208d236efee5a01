"""Where and how to connect: resolved once from `Settings` (or given directly for an in-process emulator)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, SecretStr

from aoai_batch.errors import NotConfigured
from aoai_batch.models import Backend
from aoai_batch.settings import Settings

ApiStyle = Literal["azure", "v1", "openai"]
"""`azure`: /openai/... with a dated api-version; `v1`: Azure's /openai/v1/; `openai`: OpenAI's /v1/."""

OPENAI_BASE_URL = "https://api.openai.com/v1"
EMULATOR_PLACEHOLDER_KEY = "emulator"
EMBEDDED_ENDPOINT = "http://emulator.invalid"  # never resolved: requests go through the ASGI transport


class AsyncCredential(Protocol):
    """An Entra ID credential: `azure.identity.aio.DefaultAzureCredential`, or a test's fake."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...

    async def close(self) -> None: ...


class Connection(BaseModel):
    backend: Backend
    style: ApiStyle
    endpoint: str
    api_version: str | None = None
    api_key: SecretStr | None = None
    token_scope: str | None = None

    @property
    def uses_entra(self) -> bool:
        return self.api_key is None

    @property
    def base_url(self) -> str:
        """The URL the SDK is given (for `azure` style the SDK appends `/openai` itself)."""
        root = self.endpoint.rstrip("/")
        if self.style == "v1":
            return root if root.endswith("/openai/v1") else f"{root}/openai/v1/"
        return root

    @property
    def host(self) -> str:
        """The endpoint without scheme or path (safe to show)."""
        rest = self.endpoint.split("://", 1)[-1]
        return rest.split("/", 1)[0]

    @property
    def label(self) -> str:
        """How messages name the service."""
        return "the embedded emulator" if self.endpoint == EMBEDDED_ENDPOINT else self.host


def _azure_style(api_version: str, endpoint: str) -> ApiStyle:
    if api_version.strip().lower() == "v1" or endpoint.rstrip("/").endswith("/openai/v1"):
        return "v1"
    return "azure"


def connection_from_settings(settings: Settings) -> Connection:
    """The connection for an Azure, OpenAI or out-of-process emulator backend (never the embedded one)."""
    backend = settings.provider
    if backend == "openai":
        key = settings.openai_api_key or settings.api_key
        if key is None:
            raise NotConfigured(
                "The openai provider needs a key, and OPENAI_API_KEY is not set.", setting="OPENAI_API_KEY"
            )
        return Connection(
            backend="openai", style="openai", endpoint=settings.openai_base_url or OPENAI_BASE_URL, api_key=key
        )
    if not settings.endpoint:
        raise NotConfigured(
            f"The {backend} provider needs an endpoint (https://RESOURCE.openai.azure.com), "
            "and AZURE_OPENAI_ENDPOINT is not set.",
            setting="AZURE_OPENAI_ENDPOINT",
        )
    style = _azure_style(settings.api_version, settings.endpoint)
    return Connection(
        backend=backend,
        style=style,
        endpoint=settings.endpoint,
        api_version=settings.api_version if style == "azure" else None,
        api_key=_azure_key(settings, backend),
        token_scope=settings.token_scope,
    )


def _azure_key(settings: Settings, backend: Backend) -> SecretStr | None:
    if settings.auth == "entra":
        return None
    if settings.api_key is not None:
        return settings.api_key
    if backend == "emulator":
        return SecretStr(EMULATOR_PLACEHOLDER_KEY)  # the emulator accepts any non-empty key unless told otherwise
    if settings.auth == "key":
        raise NotConfigured(
            "AOAI_BATCH_AUTH=key needs a key, and AZURE_OPENAI_API_KEY is not set.", setting="AZURE_OPENAI_API_KEY"
        )
    return None


def emulator_connection(key: str, *, api_version: str, endpoint: str = EMBEDDED_ENDPOINT) -> Connection:
    """The in-process emulator, reached through its ASGI transport (the host is never resolved)."""
    style = _azure_style(api_version, endpoint)
    return Connection(
        backend="emulator",
        style=style,
        endpoint=endpoint,
        api_version=api_version if style == "azure" else None,
        api_key=SecretStr(key),
    )
