"""What a command loads. `aoai-batch-mcp validate` imports only the validator: its whole run on a large file
is held to 1.4x a bare read-and-parse loop (bench/validate.py), and pydantic, the SDKs or the tokenizer would
be most of it. `upload` never loads the tokenizer, whose tables would double its peak memory
(bench/upload_memory.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.batch_files import write_workspace_batch
from tests.support.cli import CLOUD_SETTINGS
from tests.support.paths import VALIDATION_FIXTURES

# What the validate command has no use for (its process stays a read-and-parse loop).
NOT_FOR_VALIDATE = {
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "platformdirs",
    "mcp",
    "mcp_types",
    "openai",
    "httpx2",
    "anyio",
    "msgspec",
    "bpe_openai",
    "starlette",
    "azure",
    "sqlite3",
}
PROBE = """
import json, sys
from server.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
from aoai_batch.tokens import get_counter
from tests.support.paths import VALIDATION_FIXTURES
loaded = get_counter.cache_info().currsize
print(json.dumps({"code": code, "modules": sorted(sys.modules), "tokenizers": loaded}), file=sys.stderr)
"""


def probe(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False, env=env)
    result: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


def modules_after(*args: str) -> tuple[int, set[str]]:
    result = probe(*args)
    return int(result["code"]), set(result["modules"])


@pytest.mark.parametrize(
    "args",
    [
        ["--no-tokens"],
        ["--no-tokens", "--json"],
        ["--deployment", "gpt-4o-mini", "--no-tokens"],
    ],
)
def test_validate_imports_no_pydantic_sdk_or_tokenizer(args: list[str]) -> None:
    code, modules = modules_after("validate", str(VALIDATION_FIXTURES / "valid.jsonl"), *args)

    assert code == 0
    assert {name.split(".")[0] for name in modules} & NOT_FOR_VALIDATE == set()
    assert "aoai_batch.models" not in modules
    assert "aoai_batch.service" not in modules


def test_validate_of_a_file_with_issues_imports_no_pydantic_either() -> None:
    code, modules = modules_after("validate", str(VALIDATION_FIXTURES / "duplicate_custom_id.jsonl"), "--no-tokens")

    assert code == 1
    assert {name.split(".")[0] for name in modules} & NOT_FOR_VALIDATE == set()


def test_the_probe_sees_what_a_command_imports(tmp_path: Path) -> None:
    # `build` does use the models: if the probe missed imports, the tests above would prove nothing.
    output = tmp_path / "out.jsonl"
    code, modules = modules_after("build", "--deployment", "gpt-4o-mini", "--prompt", "hi", "--output", str(output))

    assert code == 0
    assert "pydantic" in modules


def test_upload_checks_the_file_without_loading_the_tokenizer(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name not in CLOUD_SETTINGS}
    env.update(AOAI_BATCH_HOME=str(tmp_path / "home"), AOAI_BATCH_WORKSPACE=str(tmp_path))
    path = write_workspace_batch(tmp_path)

    result = probe("upload", str(path), "--json", env=env)

    assert result["code"] == 0
    assert result["tokenizers"] == 0
