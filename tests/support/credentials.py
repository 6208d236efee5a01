"""A stand-in for DefaultAzureCredential: hands out a token, or fails as Azure's does."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

NEVER_EXPIRES = 4_102_444_800  # 2100-01-01


class FakeCredential:
    def __init__(self, token: str = "fake-token", *, fail: bool = False) -> None:
        self.token = token
        self.fail = fail
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.fail:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
        return AccessToken(self.token, NEVER_EXPIRES)

    async def close(self) -> None:
        self.closed = True
