"""The MCP Bundle manifest (manifest.json) against the code: settings it sets, tools and prompts it lists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from aoai_batch.settings import Settings
from server.app import build_server

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.json"


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def _settings_variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [])
        names.update(str(choice) for choice in choices if str(choice).isupper())
    return names


def test_manifest_sets_only_variables_the_settings_read() -> None:
    env = _manifest()["server"]["mcp_config"]["env"]

    assert set(env) <= _settings_variables()


def test_manifest_env_refers_only_to_declared_user_config() -> None:
    manifest = _manifest()
    env = manifest["server"]["mcp_config"]["env"]
    referenced = {m for value in env.values() for m in re.findall(r"\$\{user_config\.(\w+)\}", value)}

    assert referenced == set(manifest["user_config"])


def test_manifest_api_key_fields_are_sensitive() -> None:
    user_config = _manifest()["user_config"]

    assert user_config["api_key"]["sensitive"] is True
    assert user_config["openai_api_key"]["sensitive"] is True
    assert user_config["workspace"]["type"] == "directory"


def test_blank_bundle_fields_leave_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # A client substitutes an empty string for an optional user_config field left blank.
    for name in _manifest()["server"]["mcp_config"]["env"]:
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("AOAI_BATCH_PROVIDER", raising=False)

    settings = Settings()

    assert settings.provider == "emulator"
    assert settings.api_key is None
    assert settings.api_version == "2024-10-21"
    assert settings.auth == "auto"
    assert settings.workspace_dirs == [(Path.home() / "aoai-batch").resolve()]


def test_manifest_names_the_version_of_the_package() -> None:
    pyproject = (MANIFEST.parent / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)

    assert version is not None
    assert _manifest()["version"] == version.group(1)


async def test_manifest_lists_exactly_the_tools_and_prompts_the_server_offers(tmp_path: Path) -> None:
    manifest = _manifest()
    settings = Settings(home=tmp_path / "home", workspace=str(tmp_path / "workspace"), provider="emulator")

    with anyio.fail_after(30):
        async with Client(build_server(settings)) as client:
            tools = (await client.list_tools()).tools
            prompts = (await client.list_prompts()).prompts

    assert {tool["name"] for tool in manifest["tools"]} == {tool.name for tool in tools}
    declared = {prompt["name"]: set(prompt.get("arguments", [])) for prompt in manifest["prompts"]}
    offered = {prompt.name: {argument.name for argument in prompt.arguments or []} for prompt in prompts}
    assert declared == offered
