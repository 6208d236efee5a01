"""Signed-in users in tests: an OAuth issuer on loopback (its keys, discovery document and JWK set) that
signs access tokens, and a transport that records the headers the server sends the service."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.http_server import served_here

AUDIENCE = "api://aoai-batch-tests"
SCOPE = "batches.use"
SUBJECT = "user-sub-1"
OBJECT_ID = "00000000-0000-0000-0000-0000000000aa"
JWKS_PATH = "/discovery/keys"

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class Issuer:
    """An authorization server's public face, as Entra ID shows it: discovery document, JWK set, tokens.

    Serve `app` (e.g. with `served_here`) and set `base` to where it listens. The issuer (`iss`, `url`) is
    `base` + `path`, as Entra ID's `https://login.microsoftonline.com/TENANT/v2.0`; its discovery document is
    under it (`url` + `/.well-known/openid-configuration`), and its keys at `jwks_url`.
    """

    def __init__(self, path: str = "/tenant-1/v2.0") -> None:
        self.base = ""
        self.path = path
        self.keys: dict[str, SigningKey] = {"rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.key_fetches = 0
        self.discovery_issuer: str | None = None  # set to publish a discovery document naming another issuer
        self.app = Starlette(
            routes=[Route(path + "/.well-known/openid-configuration", self._discovery), Route(JWKS_PATH, self._jwks)]
        )

    @property
    def url(self) -> str:
        return self.base + self.path

    @property
    def jwks_url(self) -> str:
        return self.base + JWKS_PATH

    def add_key(self, kid: str, key: SigningKey) -> None:
        """Publishes another key (as an issuer does before it rotates to it)."""
        self.keys[kid] = key

    def token(
        self,
        *,
        kid: str = "rsa-1",
        audience: str = AUDIENCE,
        issuer: str | None = None,
        expires_in: float = 600,
        not_before_in: float | None = None,
        scp: str | None = SCOPE,
        **claims: Any,
    ) -> str:
        """An access token signed with key `kid`, as Entra ID issues one (scopes in `scp`)."""
        now = time.time()
        payload: dict[str, Any] = {
            "iss": issuer if issuer is not None else self.url,
            "aud": audience,
            "sub": SUBJECT,
            "oid": OBJECT_ID,
            "tid": "tenant-1",
            "azp": "client-app-1",
            "iat": int(now),
            "exp": int(now + expires_in),
        }
        if not_before_in is not None:
            payload["nbf"] = int(now + not_before_in)
        if scp is not None:
            payload["scp"] = scp
        payload.update(claims)
        key = self.keys[kid]
        algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})

    def public_jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "use": "sig"}

    async def _discovery(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.discovery_issuer or self.url,
                "jwks_uri": self.jwks_url,
                "authorization_endpoint": self.base + "/oauth2/v2.0/authorize",
                "token_endpoint": self.base + "/oauth2/v2.0/token",
            }
        )

    async def _jwks(self, request: Request) -> JSONResponse:
        self.key_fetches += 1
        return JSONResponse({"keys": [self.public_jwk(kid) for kid in self.keys]})


class HeaderRecorder(httpx2.AsyncBaseTransport):
    """Sends every request on through `inner`, keeping the headers it carried."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[httpx2.Headers] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(request.headers)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextlib.asynccontextmanager
async def served_issuer() -> AsyncIterator[Issuer]:
    """An issuer (discovery document and JWKS) served on loopback in this event loop, its `base` set."""
    issuer = Issuer()
    async with served_here(issuer.app) as url:
        issuer.base = url
        yield issuer
