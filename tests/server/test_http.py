from __future__ import annotations

import socket
from pathlib import Path

import httpx2
import pytest

from aoai_batch.errors import InvalidInput
from server.app import build_server
from server.cli import main
from server.http import BearerToken, http_app, is_loopback, security_for
from server.oauth import server_auth
from tests.support.cli import isolate_cli
from tests.support.mcp import make_settings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_loopback_addresses_are_recognised(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_serving_has_dns_rebinding_protection() -> None:
    security = security_for("127.0.0.1")
    assert security.enable_dns_rebinding_protection is True
    assert security.allowed_hosts == ["127.0.0.1:*", "localhost:*", "[::1]:*"]


def test_a_non_loopback_address_without_a_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        http_app(build_server(make_settings(tmp_path)), host="0.0.0.0", token=None)


def test_serve_refuses_a_non_loopback_bind_without_a_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AOAI_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AOAI_BATCH_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("AOAI_BATCH_HTTP_TOKEN", raising=False)
    assert main(["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1"]) == 2


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"authorization": "bearer s3cret-token"}, 401),
        ({"authorization": "Bearer s3cret-token"}, 404),  # through the guard, to a path that does not exist
    ],
)
async def test_the_bearer_token_guards_every_request(headers: dict[str, str], status: int) -> None:
    async def not_found(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    guarded = BearerToken(not_found, "s3cret-token")
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=guarded), base_url="http://testserver") as http:
        response = await http.get("/mcp", headers=headers)
    assert response.status_code == status
    assert b"s3cret-token" not in response.content


def test_serve_with_invalid_settings_exits_with_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOAI_BATCH_MAX_REQUESTS", "not a number")
    assert main(["serve"]) == 2


@pytest.mark.parametrize(
    "variables",
    [
        {"AOAI_BATCH_OAUTH_ISSUER": "https://login.example.com/t/v2.0"},
        {
            "AOAI_BATCH_OAUTH_ISSUER": "https://login.example.com/t/v2.0",
            "AOAI_BATCH_OAUTH_AUDIENCE": "api://x",
            "AOAI_BATCH_HTTP_TOKEN": "s3cret-token",
        },
    ],
)
def test_serve_http_with_sign_in_half_set_or_beside_the_token_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], variables: dict[str, str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--transport", "http", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "AOAI_BATCH_OAUTH" in err
    assert "s3cret-token" not in err


def test_a_non_loopback_address_with_sign_in_is_served(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, oauth_issuer="https://login.example.com/t/v2.0", oauth_audience="api://x")
    assert settings.sign_in is not None
    auth = server_auth(settings.sign_in, resource_url="https://batch.example.com/mcp")
    assert http_app(build_server(settings, auth=auth), host="0.0.0.0", token=None) is not None


def test_serve_http_on_a_port_in_use_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--transport", "http", "--port", str(taken.getsockname()[1])]) == 2
    assert "Cannot listen" in capsys.readouterr().err


def test_serve_with_a_sign_in_issuer_that_is_not_a_url_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("AOAI_BATCH_OAUTH_ISSUER", "login.example.com")
    monkeypatch.setenv("AOAI_BATCH_OAUTH_AUDIENCE", "api://x")
    assert main(["serve", "--transport", "http", "--port", "0"]) == 2
    assert "AOAI_BATCH_OAUTH_ISSUER" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["batch.example.com/mcp", "ftp://batch.example.com/mcp", "https:///mcp"])
def test_serve_with_a_public_url_that_is_not_one_is_argparses_usage_error(url: str) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["serve", "--transport", "http", "--public-url", url])
    assert raised.value.code == 2
