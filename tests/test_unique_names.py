"""Each public class and type alias (a CapWords name at module level) is defined in one module only.

Two `BatchRecord`s, `Clock`s or `Flavor`s with different meanings made readers guess which one an import
meant; a name that means something else gets a name of its own.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.support.paths import REPO_ROOT

PACKAGES = ("aoai_batch", "server", "tools", "prompts")
GENERIC = frozenset({"T", "M"})  # type variables, local to each module by nature


def top_level_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if name[:1].isupper() and not name.isupper() and name not in GENERIC]


def defined_in(root: Path) -> dict[str, list[str]]:
    where: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for name in top_level_names(ast.parse(path.read_text(encoding="utf-8"))):
                where[name].append(path.relative_to(root).as_posix())
    return where


def test_no_public_class_or_type_name_is_defined_twice() -> None:
    twice = {name: paths for name, paths in defined_in(REPO_ROOT).items() if len(paths) > 1}
    assert twice == {}


def test_the_check_sees_a_name_defined_in_two_modules(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "aoai_batch" / "a.py").write_text("class Clock:\n    pass\n", encoding="utf-8")
    (tmp_path / "server" / "b.py").write_text("Clock = float\nMAX = 3\n", encoding="utf-8")

    assert {name: paths for name, paths in defined_in(tmp_path).items() if len(paths) > 1} == {
        "Clock": ["aoai_batch/a.py", "server/b.py"]
    }
