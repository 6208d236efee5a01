"""Signed-in users: the real server over streamable HTTP, an issuer's keys on loopback, a real `mcp.Client`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from anyio.abc import Process
from cryptography.hazmat.primitives.asymmetric import ec
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context
from starlette.types import ASGIApp

from aoai_batch.emulator import Emulator
from server.app import build_server
from server.http import MCP_PATH, http_app
from server.oauth import server_auth
from tests.support.cli import isolate_cli
from tests.support.http_server import served_for_url
from tests.support.mcp import WAIT, make_settings, structured
from tests.support.oauth import AUDIENCE, OBJECT_ID, SCOPE, SUBJECT, HeaderRecorder, Issuer, served_issuer
from tests.support.paths import REPO_ROOT
from tools.identity import signed_in_user

METADATA_PATH = "/.well-known/oauth-protected-resource" + MCP_PATH
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
SUBPROCESS_WAIT = 60.0  # start-up imports the SDKs
URL = re.compile(r"http://\S+/mcp\b")
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@dataclass
class SignedInServer:
    url: str  # the /mcp endpoint
    base: str
    azure: HeaderRecorder  # what the server sent the (emulated) Azure service


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with served_issuer() as served:
        yield served


def whoami(ctx: Context) -> dict[str, Any]:
    """A tool of the tests only: who the server thinks is calling."""
    user = signed_in_user(ctx)
    return {"owner": user.owner if user else None, "subject": user.subject if user else None}


@pytest.fixture
async def signed_in(tmp_path: Path, issuer: Issuer, emulator: Emulator) -> AsyncIterator[SignedInServer]:
    settings = make_settings(tmp_path, oauth_issuer=issuer.url, oauth_audience=AUDIENCE, oauth_scopes=SCOPE)
    sign_in = settings.sign_in
    assert sign_in is not None
    azure = HeaderRecorder(emulator.transport())

    def app_for(base: str) -> ASGIApp:
        server = build_server(settings, transport=azure, auth=server_auth(sign_in, resource_url=base + MCP_PATH))
        server.add_tool(whoami)
        return http_app(server, host="127.0.0.1", token=None)

    async with served_for_url(app_for) as base:
        yield SignedInServer(base + MCP_PATH, base, azure)


@asynccontextmanager
async def signed_in_client(url: str, token: str) -> AsyncIterator[Client]:
    """A real MCP client sending `token` (the SDK leaves a client it is given open: closed here)."""
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=WAIT)
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        yield client


async def test_a_signed_in_user_lists_and_calls_tools_and_the_server_knows_who_they_are(
    signed_in: SignedInServer, issuer: Issuer
) -> None:
    with anyio.fail_after(WAIT):
        async with signed_in_client(signed_in.url, issuer.token()) as c:
            tools = await c.list_tools()
            me = structured(await c.call_tool("whoami", {}))
            batches = structured(await c.call_tool("list_batches", {}))
    assert "list_batches" in {tool.name for tool in tools.tools}
    assert me == {"owner": OBJECT_ID, "subject": SUBJECT}
    assert batches["batches"] == []


async def test_the_users_token_never_reaches_azure_the_server_signs_with_its_own_key(
    signed_in: SignedInServer, issuer: Issuer
) -> None:
    token = issuer.token()
    with anyio.fail_after(WAIT):
        async with signed_in_client(signed_in.url, token) as c:
            structured(await c.call_tool("list_batches", {}))
            structured(await c.call_tool("list_files", {}))
    assert signed_in.azure.sent  # the service was asked
    for headers in signed_in.azure.sent:
        assert all(token not in value for value in headers.values())
        assert headers.get("api-key") == "test-key"  # the server's own identity (make_settings' key)
        assert "authorization" not in headers


def other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def hs256_with_the_public_key(issuer: Issuer) -> str:
    """The classic confusion attack: HMAC 'signed' with the RSA public key the issuer publishes."""
    public = issuer.public_jwk("rsa-1")
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    return jwt.api_jws.PyJWS(algorithms=["HS256"]).encode(
        jwt.utils.force_bytes(str(claims)), key=str(public).encode(), algorithm="HS256", headers={"kid": "rsa-1"}
    )


def unsigned(issuer: Issuer) -> str:
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    return jwt.encode(claims, key="", algorithm="none", headers={"kid": "rsa-1"})


def tampered(issuer: Issuer) -> str:
    header, payload, signature = issuer.token().split(".")
    other = issuer.token(sub="someone-else").split(".")[1]
    return ".".join([header, other if other != payload else payload, signature[::-1]])


def signed_by_a_stranger(issuer: Issuer) -> str:
    """A well-formed ES256 token naming a key id the issuer does not publish."""
    stranger = Issuer()
    stranger.base = issuer.base
    stranger.keys = {"es-x": other_key()}
    return stranger.token(kid="es-x")


BAD_TOKENS: dict[str, Callable[[Issuer], str]] = {
    "wrong audience": lambda issuer: issuer.token(audience="api://someone-else"),
    "wrong issuer": lambda issuer: issuer.token(issuer="https://login.example.com/other/v2.0"),
    "expired": lambda issuer: issuer.token(expires_in=-3600),
    "not valid yet": lambda issuer: issuer.token(not_before_in=3600),
    "HS256 with the public key": hs256_with_the_public_key,
    "alg none": unsigned,
    "tampered": tampered,
    "unknown key": signed_by_a_stranger,
    "not a JWT": lambda issuer: "not-a-jwt",
}


async def post_initialize(url: str, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=WAIT) as http:
        return await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})


def challenge(response: httpx2.Response) -> str:
    value = response.headers.get("www-authenticate", "")
    assert value.startswith("Bearer "), value
    return value


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_is_401_with_a_challenge_pointing_at_the_metadata(
    signed_in: SignedInServer, issuer: Issuer, case: str
) -> None:
    with anyio.fail_after(WAIT):
        response = await post_initialize(signed_in.url, {"authorization": f"Bearer {BAD_TOKENS[case](issuer)}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert f'resource_metadata="{signed_in.base}{METADATA_PATH}"' in challenge(response)
    assert f'scope="{SCOPE}"' in challenge(response)


async def test_no_token_is_401_with_a_challenge_pointing_at_the_metadata(signed_in: SignedInServer) -> None:
    with anyio.fail_after(WAIT):
        response = await post_initialize(signed_in.url, {})
    assert response.status_code == 401
    assert f'resource_metadata="{signed_in.base}{METADATA_PATH}"' in challenge(response)


async def test_a_token_without_the_required_scope_is_403_insufficient_scope(
    signed_in: SignedInServer, issuer: Issuer
) -> None:
    with anyio.fail_after(WAIT):
        response = await post_initialize(signed_in.url, {"authorization": f"Bearer {issuer.token(scp='other.scope')}"})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in challenge(response)
    assert f'scope="{SCOPE}"' in challenge(response)


async def test_a_scope_in_the_rfc_9068_scope_claim_counts_too(signed_in: SignedInServer, issuer: Issuer) -> None:
    with anyio.fail_after(WAIT):
        response = await post_initialize(
            signed_in.url, {"authorization": f"Bearer {issuer.token(scp=None, scope=f'openid {SCOPE}')}"}
        )
    assert response.status_code == 200


async def test_the_mcp_client_with_a_bad_token_does_not_get_in(signed_in: SignedInServer, issuer: Issuer) -> None:
    token = issuer.token(audience="api://someone-else")
    with anyio.fail_after(WAIT), pytest.raises(ExceptionGroup) as raised:
        async with signed_in_client(signed_in.url, token) as c:
            await c.list_tools()
    assert raised.group_contains(MCPError, depth=2)  # the initialize request was refused (401, above)


async def test_the_protected_resource_metadata_names_this_server_the_issuer_and_the_scopes(
    signed_in: SignedInServer, issuer: Issuer
) -> None:
    with anyio.fail_after(WAIT):
        async with httpx2.AsyncClient(timeout=WAIT) as http:
            response = await http.get(signed_in.base + METADATA_PATH)
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["resource"] == signed_in.url
    assert metadata["authorization_servers"] == [issuer.url]
    assert metadata["scopes_supported"] == [SCOPE]
    assert metadata["bearer_methods_supported"] == ["header"]


async def test_a_key_the_issuer_rotates_to_is_fetched_when_a_token_names_it(
    signed_in: SignedInServer, issuer: Issuer
) -> None:
    with anyio.fail_after(WAIT):
        first = await post_initialize(signed_in.url, {"authorization": f"Bearer {issuer.token()}"})
        issuer.add_key("es-2", other_key())
        rotated = await post_initialize(signed_in.url, {"authorization": f"Bearer {issuer.token(kid='es-2')}"})
    assert (first.status_code, rotated.status_code) == (200, 200)
    assert issuer.key_fetches == 2


async def read_stderr_line(process: Process) -> str:
    assert process.stderr is not None
    buffer = bytearray()
    while b"\n" not in buffer:
        buffer.extend(await process.stderr.receive())
    return buffer.partition(b"\n")[0].decode()


async def test_serve_http_with_sign_in_checks_tokens_against_the_port_it_was_given(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command as an operator runs it: `--port 0`, and the metadata names the port actually bound."""
    isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("AOAI_BATCH_OAUTH_ISSUER", issuer.url)
    monkeypatch.setenv("AOAI_BATCH_OAUTH_AUDIENCE", AUDIENCE)
    command = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", "0"]
    with anyio.fail_after(SUBPROCESS_WAIT):
        process = await anyio.open_process(command, stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
        try:
            found = URL.search(await read_stderr_line(process))
            assert found is not None
            url = found.group(0)
            refused = await post_initialize(url, {})
            async with signed_in_client(url, issuer.token()) as client:
                tools = await client.list_tools()
        finally:
            process.terminate()
            await process.wait()
            await process.aclose()
    base = url.removesuffix(MCP_PATH)
    assert refused.status_code == 401
    assert f'resource_metadata="{base}{METADATA_PATH}"' in challenge(refused)
    assert "list_batches" in {tool.name for tool in tools.tools}


async def test_without_sign_in_no_user_is_known(tmp_path: Path, emulator: Emulator) -> None:
    server = build_server(make_settings(tmp_path), transport=emulator.transport())
    server.add_tool(whoami)
    with anyio.fail_after(WAIT):
        async with Client(server) as client:
            me = structured(await client.call_tool("whoami", {}))
    assert me == {"owner": None, "subject": None}
