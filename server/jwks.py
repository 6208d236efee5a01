"""The signing keys of an OAuth issuer: found through its discovery document, cached, refreshed on a new key id.

`AOAI_BATCH_OAUTH_JWKS_URL` names the key set directly; otherwise the issuer's OpenID discovery document
(`{issuer}/.well-known/openid-configuration`) gives its `jwks_uri`, and that document must name the same
issuer (OpenID Connect Discovery §4.3), so a wrong issuer URL cannot lend us someone else's keys.

An issuer rotates its keys by publishing the new one before signing with it: a token with a key id we have
not seen makes us fetch the set again, at most once per `MIN_REFRESH_SECONDS` (so tokens with made-up key ids
cannot make us hammer the issuer), and the set is fetched again anyway once it is `MAX_AGE_SECONDS` old.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import jwt

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
MIN_REFRESH_SECONDS = 30.0
MAX_AGE_SECONDS = 3600.0
FETCH_TIMEOUT_SECONDS = 10.0


class KeysUnavailable(Exception):
    """The issuer's discovery document or key set could not be fetched or read."""


class JwksCache:
    """The issuer's public keys by key id (`kid`)."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._transport = transport
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._refreshed_at: float | None = None
        self._lock = anyio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key with id `kid`, or None when the issuer does not publish it.

        Raises:
            KeysUnavailable: the keys could not be fetched.
        """
        async with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= MAX_AGE_SECONDS:
                await self._fetch(now)
            elif kid not in self._keys and self._may_refresh(now):
                self._refreshed_at = now
                await self._fetch(now)
            return self._keys.get(kid)

    def _may_refresh(self, now: float) -> bool:
        return self._refreshed_at is None or now - self._refreshed_at >= MIN_REFRESH_SECONDS

    async def _fetch(self, now: float) -> None:
        async with httpx2.AsyncClient(transport=self._transport, timeout=FETCH_TIMEOUT_SECONDS) as http:
            url = self._jwks_url or await self._discovered_jwks_url(http)
            document = await _get_json(http, url)
        self._keys = _usable_keys(document, url)
        self._fetched_at = now

    async def _discovered_jwks_url(self, http: httpx2.AsyncClient) -> str:
        url = self._issuer.rstrip("/") + DISCOVERY_PATH
        document = await _get_json(http, url)
        if document.get("issuer") != self._issuer:
            raise KeysUnavailable(f"{url} names the issuer {document.get('issuer')!r}, not {self._issuer!r}.")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise KeysUnavailable(f"{url} has no jwks_uri.")
        return jwks_uri


async def _get_json(http: httpx2.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await http.get(url)
        response.raise_for_status()
        document = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise KeysUnavailable(f"Could not read {url}: {exc}") from exc
    if not isinstance(document, dict):
        raise KeysUnavailable(f"{url} is not a JSON object.")
    return document


def _usable_keys(document: dict[str, Any], url: str) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWK set that have a key id; a key we cannot use is skipped, not fatal."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeysUnavailable(f"{url} is not a JWK set (no keys).")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:  # e.g. a key type PyJWT has no algorithm for
            logger.info("Skipping key %s of %s: %s", entry["kid"], url, exc)
    return keys
