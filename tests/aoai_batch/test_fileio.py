"""Atomic writes: a file appears whole or not at all, and nothing is overwritten unless asked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aoai_batch.errors import InvalidInput
from aoai_batch.fileio import atomic_writer, free_path, open_temp_beside, publish


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_a_completed_block_publishes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.jsonl"
    with atomic_writer(target) as handle:
        handle.write(b"one\n")
    assert target.read_bytes() == b"one\n"
    assert leftovers(target.parent) == []


def test_a_failing_block_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"

    def write_half() -> None:
        with atomic_writer(target) as handle:
            handle.write(b"half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_half()
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_an_existing_file_is_refused_unless_overwrite_is_asked(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"keep")
    with pytest.raises(InvalidInput), atomic_writer(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"keep"
    with atomic_writer(target, overwrite=True) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"

    def race() -> None:
        with atomic_writer(target) as handle:
            handle.write(b"mine")
            target.write_bytes(b"theirs")

    with pytest.raises(InvalidInput):
        race()
    assert target.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_publish_without_overwrite_keeps_an_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"theirs")
    tmp, fd = open_temp_beside(target)
    os.close(fd)
    with pytest.raises(InvalidInput):
        publish(tmp, target, overwrite=False)
    assert target.read_bytes() == b"theirs"


def test_written_files_get_the_umask_permissions_not_private_ones(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "out.jsonl"
        with atomic_writer(target) as handle:
            handle.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_free_path_picks_the_first_unused_name(tmp_path: Path) -> None:
    target = tmp_path / "results.jsonl"
    assert free_path(target) == target
    target.write_bytes(b"")
    (tmp_path / "results-2.jsonl").write_bytes(b"")
    assert free_path(target) == tmp_path / "results-3.jsonl"
