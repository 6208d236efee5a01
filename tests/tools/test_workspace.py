from __future__ import annotations

import os
from pathlib import Path

import pytest

from aoai_batch.errors import InvalidInput, PathNotAllowed
from tools.workspace import Workspace, path_from_uri


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "ws"
    other = tmp_path / "other"
    outside = tmp_path / "outside"
    for folder in (home, other, outside):
        folder.mkdir()
    (home / "in.jsonl").write_text("{}\n")
    (outside / "secret.txt").write_text("no")
    os.symlink(outside, home / "escape")
    os.symlink(outside / "secret.txt", home / "link.txt")
    os.symlink(home / "in.jsonl", home / "inner-link.jsonl")
    return {"home": home, "other": other, "outside": outside}


def test_relative_path_resolves_against_the_first_folder(layout: dict[str, Path]) -> None:
    workspace = Workspace([layout["home"], layout["other"]])
    assert workspace.resolve("in.jsonl", must_exist=True) == layout["home"] / "in.jsonl"


def test_absolute_path_inside_any_folder_is_allowed(layout: dict[str, Path]) -> None:
    workspace = Workspace([layout["home"], layout["other"]])
    target = layout["other"] / "new.jsonl"
    assert workspace.resolve(str(target)) == target


def test_file_uri_inside_the_workspace_is_allowed(layout: dict[str, Path]) -> None:
    workspace = Workspace([layout["home"]])
    assert workspace.resolve((layout["home"] / "in.jsonl").as_uri()) == layout["home"] / "in.jsonl"


def test_symlink_that_stays_inside_is_allowed(layout: dict[str, Path]) -> None:
    workspace = Workspace([layout["home"]])
    assert workspace.resolve("inner-link.jsonl", must_exist=True) == layout["home"] / "in.jsonl"


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "sub/../in.jsonl",
        "escape/secret.txt",
        "link.txt",
        "/etc/passwd",
        "~/../../etc/passwd",
        "file:///etc/passwd",
    ],
)
def test_paths_that_leave_the_workspace_are_refused(layout: dict[str, Path], path: str) -> None:
    workspace = Workspace([layout["home"]])
    with pytest.raises(PathNotAllowed):
        workspace.resolve(path)


def test_absolute_path_of_another_folder_is_refused_unless_it_is_a_root(layout: dict[str, Path]) -> None:
    workspace = Workspace([layout["home"]])
    secret = str(layout["outside"] / "secret.txt")
    with pytest.raises(PathNotAllowed):
        workspace.resolve(secret)
    assert workspace.resolve(secret, roots=[layout["outside"]]) == layout["outside"] / "secret.txt"


@pytest.mark.parametrize("path", ["", "   "])
def test_empty_path_is_invalid_input(layout: dict[str, Path], path: str) -> None:
    with pytest.raises(InvalidInput):
        Workspace([layout["home"]]).resolve(path)


def test_missing_file_is_invalid_input_when_it_must_exist(layout: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput) as caught:
        Workspace([layout["home"]]).resolve("nope.jsonl", must_exist=True)
    assert not isinstance(caught.value, PathNotAllowed)


def test_output_path_defaults_to_the_first_folder(layout: dict[str, Path]) -> None:
    workspace = Workspace([layout["home"], layout["other"]])
    assert workspace.output_path(None, "batch.jsonl") == layout["home"] / "batch.jsonl"


def test_output_dir_is_created_inside_the_workspace(layout: dict[str, Path]) -> None:
    folder = Workspace([layout["home"]]).output_dir("results/run1", ".")
    assert folder.is_dir()
    assert folder == layout["home"] / "results" / "run1"


def test_output_dir_that_is_a_file_is_invalid_input(layout: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput):
        Workspace([layout["home"]]).output_dir("in.jsonl", ".")


def test_ensure_creates_the_default_folder(tmp_path: Path) -> None:
    workspace = Workspace([tmp_path / "new" / "ws"])
    workspace.ensure()
    assert workspace.default_dir.is_dir()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///tmp/a%20b", Path("/tmp/a b")),
        ("file://localhost/tmp/x", Path("/tmp/x")),
        ("https://example.com/x", None),
        ("file://server/share", None),
    ],
)
def test_root_uris_become_local_folders(uri: str, expected: Path | None) -> None:
    assert path_from_uri(uri) == expected
