"""Signed-in users over HTTP: the server as an OAuth 2.1 resource server (MCP authorization, 2025-11-25).

A client sends `Authorization: Bearer <access token>` issued by `AOAI_BATCH_OAUTH_ISSUER` for
`AOAI_BATCH_OAUTH_AUDIENCE`. `JwtVerifier` checks it (signature with the issuer's published keys, RS256 or
ES256 only; issuer; audience; expiry and not-before with `LEEWAY_SECONDS`); the SDK's middleware answers a
missing or bad token with 401 and a token without `AOAI_BATCH_OAUTH_SCOPES` with 403, both with
`WWW-Authenticate: Bearer ... resource_metadata="<RFC 9728 document>"`, and serves that document.

The token only says who is asking. It is never sent on: the server reaches Azure with its own identity
(its key or DefaultAzureCredential), whoever signed in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings

from aoai_batch.settings import OAuthSettings
from server.jwks import JwksCache, KeysUnavailable

logger = logging.getLogger(__name__)

# Asymmetric only: with a published (public) key, HS256 would let anyone sign, and `none` signs nothing.
ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 60  # clock skew between the issuer and this server
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# Where each issuer puts a token's scopes: Entra ID in `scp`, RFC 9068 (and most others) in `scope`.
SCOPE_CLAIMS = ("scp", "scope")
# Who the client is: Entra ID v2 `azp`, v1 `appid`, RFC 9068 `client_id`.
CLIENT_CLAIMS = ("client_id", "azp", "appid")


@dataclass(frozen=True)
class ServerAuth:
    """What `build_server` hands the SDK to require signed-in users."""

    settings: AuthSettings
    verifier: TokenVerifier


def server_auth(sign_in: OAuthSettings, *, resource_url: str) -> ServerAuth:
    """Sign-in for the server clients reach at `resource_url` (its /mcp URL, as clients write it)."""
    verifier = JwtVerifier(
        issuer=sign_in.issuer,
        audience=sign_in.audience,
        resource_url=resource_url,
        required_scopes=sign_in.scopes,
        keys=JwksCache(sign_in.issuer, jwks_url=sign_in.jwks_url),
    )
    settings = AuthSettings(
        issuer_url=sign_in.issuer,  # pydantic validates the strings into URLs
        resource_server_url=resource_url,
        required_scopes=sign_in.scopes or None,
        validate_token_resource=True,
    )
    return ServerAuth(settings, verifier)


class JwtVerifier(TokenVerifier):
    """Checks a JWT access token; None (401) for any token that is not good, with the reason in the log."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        resource_url: str,
        keys: JwksCache,
        required_scopes: Sequence[str] = (),
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._resource_url = resource_url
        self._keys = keys
        self._required_scopes = tuple(required_scopes)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await self._verified_claims(token)
        except (jwt.PyJWTError, KeysUnavailable) as exc:
            logger.warning("Refused a bearer token: %s", exc)  # the reason, never the token
            return None
        return AccessToken(
            token=token,
            client_id=_first_str(claims, CLIENT_CLAIMS) or claims["sub"],
            scopes=_with_full_names(_scopes(claims), self._required_scopes),
            expires_at=int(claims["exp"]),
            # The audience check above is what ties the token to this server: Entra ID's audience is the app
            # registration's id, not this URL, so the SDK's own resource check is handed the URL it expects.
            resource=self._resource_url,
            subject=claims["sub"],
            claims={key: claims[key] for key in ("iss", "oid", "tid") if isinstance(claims.get(key), str)},
        )

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise jwt.InvalidTokenError("the token names no key (kid)")
        key = await self._keys.key(kid)
        if key is None:
            raise jwt.InvalidTokenError(f"the issuer publishes no key {kid!r}")
        if key.algorithm_name != algorithm:
            raise jwt.InvalidAlgorithmError(f"key {kid!r} is for {key.algorithm_name}, not {algorithm}")
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=self._audience,
            issuer=self._issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
        return claims  # PyJWT has also checked that `sub` is a string


def _scopes(claims: dict[str, Any]) -> list[str]:
    scopes: list[str] = []
    for name in SCOPE_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            scopes.extend(value.split())
        elif isinstance(value, list):
            scopes.extend(item for item in value if isinstance(item, str))
    return scopes


def _with_full_names(scopes: list[str], required: tuple[str, ...]) -> list[str]:
    """`scopes`, and each required scope written as a URI (`api://APP/batches.use`) whose name is among them.

    Entra ID is asked for a scope by its full name, which is what the metadata must offer clients, but puts
    only the name (`batches.use`) in `scp`. The audience check has already tied the token to this app.
    """
    named = [scope for scope in required if "/" in scope and scope.rsplit("/", 1)[1] in scopes]
    return scopes + [scope for scope in named if scope not in scopes]


def _first_str(claims: dict[str, Any], names: tuple[str, ...]) -> str | None:
    return next((claims[name] for name in names if isinstance(claims.get(name), str)), None)
