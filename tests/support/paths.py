"""Where the repository and its test data are."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATION_FIXTURES = REPO_ROOT / "tests" / "aoai_batch" / "fixtures" / "validation"


def names_in(folder: Path) -> list[str]:
    """The names of what a folder holds, sorted."""
    return sorted(path.name for path in folder.iterdir())
