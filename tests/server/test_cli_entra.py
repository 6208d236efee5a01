"""A failed Entra ID sign-in, with a real DefaultAzureCredential in a subprocess where no credential exists."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from aoai_batch.client.auth import CHAIN_LOGGER
from tests.support.paths import REPO_ROOT


def no_credential_env(tmp_path: Path) -> dict[str, str]:
    """Nothing to sign in with: no `az` on PATH, an empty HOME, no AZURE_* but the endpoint.

    AZURE_TOKEN_CREDENTIALS=dev keeps DefaultAzureCredential to the developer credentials (Azure CLI, azd,
    PowerShell, VS Code, the shared cache): with none installed it fails at once and never goes on the network
    (the managed-identity probe of the full chain would ask 169.254.169.254).
    """
    empty = tmp_path / "bin"
    empty.mkdir()
    return {
        "PATH": str(empty),
        "HOME": str(tmp_path / "user"),
        "AOAI_BATCH_HOME": str(tmp_path / "state"),
        "AOAI_BATCH_WORKSPACE": str(tmp_path / "ws"),
        "AZURE_OPENAI_ENDPOINT": "https://resource.openai.azure.invalid",
        "AOAI_BATCH_AUTH": "entra",
        "AZURE_TOKEN_CREDENTIALS": "dev",
    }


def test_a_failed_sign_in_is_one_line_saying_what_to_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "list"],
        env=no_credential_env(tmp_path),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "az login" in lines[0]
    assert "AZURE_OPENAI_API_KEY" in lines[0]
    assert "Traceback" not in done.stderr
    assert "Credential" not in done.stderr  # none of azure-identity's list of what it tried


def test_azure_identitys_dump_is_kept_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    chain = logging.getLogger(CHAIN_LOGGER)
    with caplog.at_level(logging.DEBUG, logger=CHAIN_LOGGER):
        chain.warning("DefaultAzureCredential failed to retrieve a token.\nAttempted credentials: ...")
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert "Attempted credentials" in record.getMessage()
