"""No import circles between this project's modules (a `TYPE_CHECKING` import counts: it is one for readers and
type checkers, and hiding a circle there is how one used to survive between `server.app` and `server.resources`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("aoai_batch", "server", "tools", "prompts")


def module_files(root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in it (`from package import module` names the module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            names.update(submodules or {node.module})
    return names & known


def import_graph(root: Path) -> dict[str, set[str]]:
    files = module_files(root)
    return {module: imported(path, set(files)) - {module} for module, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, as the modules on it, starting from the smallest name."""
    found: set[tuple[str, ...]] = set()

    def walk(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                loop = path[path.index(target) :]
                start = loop.index(min(loop))
                found.add(tuple(loop[start:] + loop[:start]))
            elif target > path[0]:  # a circle is found from its smallest module only
                walk(target, [*path, target])

    for module in sorted(graph):
        walk(module, [module])
    return [list(loop) for loop in sorted(found)]


def test_no_module_imports_itself_through_others() -> None:
    assert circles(import_graph(ROOT)) == []


def test_the_check_finds_a_circle_hidden_behind_type_checking(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "app.py").write_text("from server.resources import register\n", encoding="utf-8")
    (tmp_path / "server" / "resources.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from server.app import AppState\n", encoding="utf-8"
    )
    assert circles(import_graph(tmp_path)) == [["server.app", "server.resources"]]
