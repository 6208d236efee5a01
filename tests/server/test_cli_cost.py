"""Cost on the command line, in real subprocesses on the embedded emulator: `build` and `upload` estimate,
`create --max-cost` refuses, `results` prices what came back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import CLOUD_SETTINGS

INSTANT = "1e12"  # emulated seconds per real second: any batch is done when next asked


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = {name: value for name, value in os.environ.items() if name not in CLOUD_SETTINGS}
    values.update(
        AOAI_BATCH_HOME=str(tmp_path / "home"), AOAI_BATCH_WORKSPACE=str(tmp_path), AOAI_EMULATOR_TIME_SCALE=INSTANT
    )
    return values


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "server", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def build(env: dict[str, str], cwd: Path, max_tokens: int) -> dict[str, Any]:
    body = json.dumps({"max_tokens": max_tokens})
    args = ("build", "--deployment", "gpt-4o-mini", "--prompt", "one", "--prompt", "two", "--body", body)
    return as_json(run(env, cwd, *args, "--output", "in.jsonl", "--json"))  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_batch_is_estimated_refused_above_max_cost_and_priced_after(tmp_path: Path, env: dict[str, str]) -> None:
    built = build(env, tmp_path, max_tokens=1_000_000)
    assert built["estimated_cost"]["model"] == "gpt-4o-mini-2024-07-18"
    assert built["estimated_cost"]["total_upper_bound"] > 0.5
    uploaded = as_json(run(env, tmp_path, "upload", "in.jsonl", "--json"))
    assert uploaded["estimated_cost"]["output_upper_bound"] == built["estimated_cost"]["output_upper_bound"]
    file_id = uploaded["file"]["id"]

    refused = run(env, tmp_path, "create", file_id, "--max-cost", "0.01", "--json")
    listed = as_json(run(env, tmp_path, "list", "--json"))

    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["kind"] == "over_budget"
    assert "--max-cost" in refused.stderr
    assert listed["batches"] == []

    batch = as_json(run(env, tmp_path, "create", file_id, "--max-cost", "1", "--json"))
    shown = run(env, tmp_path, "results", batch["id"])

    assert shown.returncode == 0, shown.stderr
    cost_line = next(line for line in shown.stdout.splitlines() if line.startswith("cost"))
    assert "USD" in cost_line
    assert "gpt-4o-mini-2024-07-18" in cost_line


@pytest.mark.slow
def test_the_readable_build_and_upload_show_the_estimate(tmp_path: Path, env: dict[str, str]) -> None:
    body = json.dumps({"max_tokens": 5})
    built = run(env, tmp_path, "build", "--deployment", "gpt-4o-mini", "--prompt", "one", "--body", body)
    uploaded = run(env, tmp_path, "upload", "batch.jsonl")

    assert built.returncode == 0, built.stderr
    assert "cost: up to USD" in built.stdout
    assert uploaded.returncode == 0, uploaded.stderr
    assert any(line.startswith("cost") and "up to USD" in line for line in uploaded.stdout.splitlines())


@pytest.mark.slow
def test_a_wrong_price_file_is_one_line_naming_it(tmp_path: Path, env: dict[str, str]) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-4o-mini"]\ninput = "cheap"\n', encoding="utf-8")
    env["AOAI_BATCH_PRICES"] = str(prices)

    done = run(env, tmp_path, "list")

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert str(prices) in done.stderr
    assert "models.'gpt-4o-mini'" in done.stderr
    assert "AOAI_BATCH_PRICES" in done.stderr
    assert "Traceback" not in done.stderr
