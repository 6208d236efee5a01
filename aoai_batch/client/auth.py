"""Entra ID tokens for Azure: a credential, its bearer-token provider, and a failed sign-in as one fact.

The async `DefaultAzureCredential` is used (not the sync one in a worker thread): `aiohttp`, which it needs,
is already a dependency, token refreshes then cost no thread, and the credential closes cleanly on exit.

When no credential of the chain works, azure-identity logs a warning of a dozen lines (one per credential it
tried) and raises the same text. A person needs one line saying what to run; the detail stays available at
debug level (this module's logger, and azure-identity's own record demoted to DEBUG).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

from aoai_batch.client.connection import AsyncCredential
from aoai_batch.errors import SignInFailed

logger = logging.getLogger(__name__)
CHAIN_LOGGER = "azure.identity.aio._credentials.chained"


class DemoteToDebug(logging.Filter):
    """Turns a logger's records into DEBUG ones: shown only to someone who asked for debug output."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _demote_chain_log() -> None:
    chain = logging.getLogger(CHAIN_LOGGER)
    if not any(isinstance(f, DemoteToDebug) for f in chain.filters):
        chain.addFilter(DemoteToDebug())


_demote_chain_log()


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
            logger.debug("Entra ID sign-in failed for %s: %s", self.scope, exc.message or exc)
            raise SignInFailed(f"Could not sign in with Entra ID (for {self.scope}).") from exc

    async def close(self) -> None:
        await self.credential.close()
