"""Entra ID tokens for Azure: a credential, its bearer-token provider, and failures that say what to do.

The async `DefaultAzureCredential` is used (not the sync one in a worker thread): `aiohttp`, which it needs,
is already a dependency, token refreshes then cost no thread, and the credential closes cleanly on exit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

from aoai_batch.client.connection import AsyncCredential
from aoai_batch.errors import AuthenticationFailed

SIGN_IN_HINT = (
    "Sign in with `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET for a service "
    "principal), or use a key: set AZURE_OPENAI_API_KEY."
)


class EntraTokens:
    """Bearer tokens for `scope`, refreshed by azure-identity's policy; `close()` closes the credential."""

    def __init__(self, scope: str, credential: AsyncCredential | None = None) -> None:
        self.scope = scope
        self.credential: AsyncCredential = credential or DefaultAzureCredential()
        self._provider: Callable[[], Awaitable[str]] = get_bearer_token_provider(self.credential, scope)  # type: ignore[arg-type]

    async def __call__(self) -> str:
        try:
            return await self._provider()
        except ClientAuthenticationError as exc:
            first_line = (exc.message or str(exc)).strip().splitlines()[0] if str(exc).strip() else ""
            raise AuthenticationFailed(
                f"Could not get an Entra ID token for {self.scope} ({first_line}). {SIGN_IN_HINT}"
            ) from exc

    async def close(self) -> None:
        await self.credential.close()
