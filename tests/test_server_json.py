"""server.json, the MCP Registry's description of this server, against the pinned schema and the code."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from jsonschema import Draft7Validator

from aoai_batch.settings import Settings, variable_names
from server.app import VERSION
from tests.support.paths import REPO_ROOT

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
SECRETS = {"AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"}


def load(name: str) -> Any:
    return json.loads((REPO_ROOT / name).read_text(encoding="utf-8"))


def test_server_json_is_valid_against_the_pinned_2025_12_11_schema() -> None:
    schema = load(".ci/server.schema.json")
    server = load("server.json")

    assert schema["$id"] == SCHEMA_URL == server["$schema"]
    Draft7Validator.check_schema(schema)
    errors = sorted(Draft7Validator(schema).iter_errors(server), key=str)
    assert not errors, [error.message for error in errors]


def test_the_pinned_schema_refuses_what_the_registry_refuses() -> None:
    validator = Draft7Validator(load(".ci/server.schema.json"))
    server = load("server.json")

    assert not validator.is_valid({**server, "description": "x" * 101})
    assert not validator.is_valid({**server, "name": "no-namespace"})
    assert not validator.is_valid({key: value for key, value in server.items() if key != "version"})


def test_the_versions_are_pyprojects() -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    server = load("server.json")

    assert server["version"] == version == VERSION
    assert [package["version"] for package in server["packages"]] == [version]


def test_the_package_is_the_pypi_distribution_run_with_uvx() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (package,) = load("server.json")["packages"]

    assert (package["registryType"], package["identifier"], package["runtimeHint"]) == ("pypi", project["name"], "uvx")
    assert package["transport"] == {"type": "stdio"}
    assert len(load("server.json")["description"]) <= 100


def test_the_readme_names_the_server_as_server_json_does() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

    assert re.findall(r"mcp-name: (\S+)", readme) == [load("server.json")["name"]]


def test_the_environment_variables_are_settings_and_the_secrets_are_marked() -> None:
    (package,) = load("server.json")["packages"]
    variables = {item["name"]: item for item in package["environmentVariables"]}
    read = {name for field in Settings.model_fields for name in variable_names(Settings, field)}

    assert set(variables) <= read
    assert {name for name, item in variables.items() if item["isSecret"]} == SECRETS
    assert all("isSecret" in item for item in variables.values())
