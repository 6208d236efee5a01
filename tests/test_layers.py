"""The import direction of SPEC §1: server -> tools/prompts -> aoai_batch, never back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

FORBIDDEN = {
    "aoai_batch": {"mcp", "server", "tools", "prompts"},
    "tools": {"server"},
    "prompts": {"server", "tools"},
}
PURE = ("models", "validation", "builder", "tokens", "templates")
PURE_FORBIDDEN = {"openai", "httpx", "httpx2", "sqlite3", "socket", "starlette", "uvicorn", "aoai_batch.client"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top_levels(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_an_outer_layer(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(top_levels(imported_modules(path)) & FORBIDDEN[package])
        for path in files
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}


def test_pure_core_does_no_network_or_database_io() -> None:
    checked = 0
    for stem in PURE:
        path = REPO_ROOT / "aoai_batch" / f"{stem}.py"
        if not path.exists():
            continue
        checked += 1
        names = imported_modules(path)
        bad = {n for n in names if n in PURE_FORBIDDEN or n.split(".")[0] in PURE_FORBIDDEN}
        assert bad == set(), f"{path.name} imports {sorted(bad)}"
    assert checked >= 1


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import mcp.server\nfrom server import cli\n", encoding="utf-8")
    assert top_levels(imported_modules(module)) & FORBIDDEN["aoai_batch"] == {"mcp", "server"}
