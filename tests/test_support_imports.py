"""Test code is shared through tests/support only: no test module imports another test module, and the
conftest files hold fixtures (and pytest's hooks), not helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

TESTS = REPO_ROOT / "tests"


def imported_test_code(path: Path) -> set[str]:
    """What a file imports from the tests' own modules other than tests.support (relative imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("." * node.level + (node.module or ""))
            continue
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        else:
            continue
        found.update(name for name in modules if name.split(".")[0] == "tests" and not is_support(name))
    return found


def is_support(module: str) -> bool:
    return module == "tests.support" or module.startswith("tests.support.")


def helpers_in(conftest: Path) -> list[str]:
    """The names a conftest defines that are neither fixtures nor pytest hooks."""
    names: list[str] = []
    for node in ast.parse(conftest.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) or (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and not node.name.startswith("pytest_")
            and not any(is_fixture(d) for d in node.decorator_list)
        ):
            names.append(node.name)
    return names


def is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "fixture"


@pytest.mark.parametrize("path", sorted(TESTS.rglob("*.py")), ids=lambda path: str(path.relative_to(TESTS)))
def test_test_code_imports_only_tests_support(path: Path) -> None:
    assert imported_test_code(path) == set()


@pytest.mark.parametrize("conftest", sorted(TESTS.rglob("conftest.py")), ids=lambda path: str(path.parent.name))
def test_conftest_files_hold_only_fixtures(conftest: Path) -> None:
    assert helpers_in(conftest) == []


def test_the_checkers_catch_a_test_module_import_and_a_helper_in_a_conftest(tmp_path: Path) -> None:
    module = tmp_path / "test_bad.py"
    module.write_text(
        "from tests.tools.test_jobs import start_batch\nimport tests.conftest\nfrom . import helpers\n"
        "from tests.support.mcp import structured\n",
        encoding="utf-8",
    )
    conftest = tmp_path / "conftest.py"
    conftest.write_text(
        "import pytest\n\n@pytest.fixture\ndef ok() -> int:\n    return 1\n\n"
        "def pytest_configure(config): ...\n\ndef helper() -> None: ...\n\nclass Server: ...\n",
        encoding="utf-8",
    )
    assert imported_test_code(module) == {"tests.tools.test_jobs", "tests.conftest", "."}
    assert helpers_in(conftest) == ["helper", "Server"]
