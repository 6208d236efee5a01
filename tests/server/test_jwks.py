"""The issuer's keys: discovery, the JWKS URL override, the cache and its refreshes, documents that are wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from server.jwks import MAX_AGE_SECONDS, MIN_REFRESH_SECONDS, JwksCache, KeysUnavailable
from server.oauth import JwtVerifier
from tests.support.oauth import AUDIENCE, Issuer

ISSUER_BASE = "http://issuer.test"
ISSUER_URL = ISSUER_BASE + "/tenant-1/v2.0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Issuer:
    issuer = Issuer()
    issuer.base = ISSUER_BASE
    return issuer


def cache_for(issuer: Issuer, clock: Callable[[], float] | None = None, **options: Any) -> JwksCache:
    transport = httpx2.ASGITransport(app=issuer.app)
    return JwksCache(issuer.url, transport=transport, clock=clock or Clock(), **options)


def verifier_for(issuer: Issuer, keys: JwksCache) -> JwtVerifier:
    return JwtVerifier(issuer=issuer.url, audience=AUDIENCE, resource_url="http://server.test/mcp", keys=keys)


async def test_the_keys_come_from_the_jwks_uri_of_the_discovery_document(issuer: Issuer) -> None:
    key = await cache_for(issuer).key("rsa-1")
    assert key is not None
    assert key.algorithm_name == "RS256"
    assert issuer.key_fetches == 1


async def test_a_discovery_document_naming_another_issuer_is_refused(issuer: Issuer) -> None:
    issuer.discovery_issuer = "http://evil.test/"
    with pytest.raises(KeysUnavailable):
        await cache_for(issuer).key("rsa-1")
    assert issuer.key_fetches == 0


async def test_the_jwks_url_setting_skips_discovery(issuer: Issuer) -> None:
    issuer.discovery_issuer = "http://evil.test/"  # would be refused, were it read
    key = await cache_for(issuer, jwks_url=issuer.jwks_url).key("rsa-1")
    assert key is not None


async def test_an_unknown_key_id_refetches_at_most_once_per_interval(issuer: Issuer) -> None:
    clock = Clock()
    keys = cache_for(issuer, clock)
    assert await keys.key("rsa-1") is not None
    assert await keys.key("nope") is None  # fetched again: it might be new
    assert await keys.key("nope-2") is None  # not again so soon
    assert issuer.key_fetches == 2
    issuer.add_key("es-2", ec.generate_private_key(ec.SECP256R1()))
    clock.now += MIN_REFRESH_SECONDS
    key = await keys.key("es-2")
    assert key is not None
    assert key.algorithm_name == "ES256"
    assert issuer.key_fetches == 3


async def test_the_key_set_is_fetched_again_once_it_is_old(issuer: Issuer) -> None:
    clock = Clock()
    keys = cache_for(issuer, clock)
    await keys.key("rsa-1")
    await keys.key("rsa-1")
    clock.now += MAX_AGE_SECONDS
    await keys.key("rsa-1")
    assert issuer.key_fetches == 2


def serving(document: Callable[[], Response]) -> httpx2.ASGITransport:
    async def answer(request: Request) -> Response:
        return document()

    return httpx2.ASGITransport(app=Starlette(routes=[Route("/{path:path}", answer)]))


@pytest.mark.parametrize(
    "document",
    [
        lambda: PlainTextResponse("not json"),
        lambda: JSONResponse(["a", "list"]),
        lambda: JSONResponse({"no": "keys"}),
        lambda: JSONResponse({"keys": "not a list"}),
        lambda: PlainTextResponse("gone", status_code=404),
    ],
)
async def test_a_key_set_that_cannot_be_read_is_keys_unavailable(document: Callable[[], Response]) -> None:
    keys = JwksCache(ISSUER_URL, jwks_url="http://issuer.test/keys", transport=serving(document))
    with pytest.raises(KeysUnavailable):
        await keys.key("rsa-1")


async def test_a_discovery_document_without_a_jwks_uri_is_keys_unavailable() -> None:
    keys = JwksCache(ISSUER_URL, transport=serving(lambda: JSONResponse({"issuer": ISSUER_URL})))
    with pytest.raises(KeysUnavailable):
        await keys.key("rsa-1")


async def test_keys_that_are_not_for_signing_or_not_usable_are_skipped(issuer: Issuer) -> None:
    good = issuer.public_jwk("rsa-1")
    published = {
        "keys": [
            {**good, "kid": "enc", "use": "enc"},
            {"kty": "unknown", "kid": "odd"},
            {**good, "kid": None},
            "not a key",
            good,
        ]
    }
    keys = JwksCache(ISSUER_URL, jwks_url="http://issuer.test/keys", transport=serving(lambda: JSONResponse(published)))
    assert await keys.key("enc") is None
    assert await keys.key("odd") is None
    assert await keys.key("rsa-1") is not None


async def test_an_unreachable_issuer_means_every_token_is_refused(issuer: Issuer) -> None:
    keys = JwksCache("http://127.0.0.1:1/v2.0")
    verifier = JwtVerifier(issuer="http://127.0.0.1:1/v2.0", audience=AUDIENCE, resource_url="http://s/mcp", keys=keys)
    assert await verifier.verify_token(issuer.token(issuer="http://127.0.0.1:1/v2.0")) is None


async def test_a_token_whose_algorithm_is_not_its_keys_is_refused(issuer: Issuer) -> None:
    """An RS256 token naming the issuer's EC key is not checked with that key, nor any other."""
    issuer.add_key("es-2", ec.generate_private_key(ec.SECP256R1()))
    verifier = verifier_for(issuer, cache_for(issuer))
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    relabelled = jwt.encode(claims, issuer.keys["rsa-1"], algorithm="RS256", headers={"kid": "es-2"})
    assert await verifier.verify_token(issuer.token(kid="es-2")) is not None
    assert await verifier.verify_token(relabelled) is None


async def test_a_token_naming_no_key_is_refused(issuer: Issuer) -> None:
    verifier = verifier_for(issuer, cache_for(issuer))
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "s", "exp": 4_102_444_800}
    assert await verifier.verify_token(jwt.encode(claims, issuer.keys["rsa-1"], algorithm="RS256")) is None


async def test_a_verified_token_carries_the_subject_the_scopes_and_the_client(issuer: Issuer) -> None:
    token = await verifier_for(issuer, cache_for(issuer)).verify_token(issuer.token(scp="a b", roles=["x"]))
    assert token is not None
    assert (token.subject, token.scopes, token.client_id) == ("user-sub-1", ["a", "b"], "client-app-1")
    assert token.resource == "http://server.test/mcp"
    assert token.claims == {"iss": issuer.url, "oid": "00000000-0000-0000-0000-0000000000aa", "tid": "tenant-1"}


async def test_a_required_scope_written_as_entras_full_name_is_met_by_its_name_in_scp(issuer: Issuer) -> None:
    full = f"{AUDIENCE}/batches.use"
    keys = cache_for(issuer)
    verifier = JwtVerifier(
        issuer=issuer.url, audience=AUDIENCE, resource_url="http://s/mcp", keys=keys, required_scopes=[full]
    )
    met = await verifier.verify_token(issuer.token(scp="batches.use"))
    unmet = await verifier.verify_token(issuer.token(scp="other.use"))
    assert met is not None
    assert unmet is not None
    assert met.scopes == ["batches.use", full]
    assert unmet.scopes == ["other.use"]
