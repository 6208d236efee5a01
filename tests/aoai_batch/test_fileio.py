"""Atomic writes: a file appears whole or not at all, and nothing is overwritten unless asked."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from aoai_batch.errors import BatchToolError, FileInTheWay, InvalidInput, NoSpace, NotWritable
from aoai_batch.fileio import (
    atomic_writer,
    free_path,
    open_temp_beside,
    publish,
    publish_all,
    remove_stale_scratch,
    scratch_folder,
    writing_into,
)


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


def test_publish_all_is_all_or_none(tmp_path: Path) -> None:
    """A name in the way of the second file takes back the first one published, and leaves theirs alone."""
    first, second = tmp_path / "results.jsonl", tmp_path / "retry.jsonl"
    second.write_bytes(b"theirs")
    done_first, done_second = tmp_path / "a.partial", tmp_path / "b.partial"
    done_first.write_bytes(b"ours")
    done_second.write_bytes(b"ours too")
    with pytest.raises(FileInTheWay):
        publish_all([(done_first, first), (None, tmp_path / "skipped"), (done_second, second)], overwrite=False)
    assert not first.exists()
    assert second.read_bytes() == b"theirs"
    assert not (tmp_path / "skipped").exists()

    publish_all([(done_first, first), (done_second, second)], overwrite=True)
    assert (first.read_bytes(), second.read_bytes()) == (b"ours", b"ours too")


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


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (errno.ENOSPC, NoSpace),
        (errno.EDQUOT, NoSpace),
        (errno.EFBIG, NoSpace),
        (errno.EACCES, NotWritable),
        (errno.EROFS, NotWritable),
        (errno.ENOTDIR, NotWritable),
    ],
)
def test_a_failed_write_becomes_one_error_naming_the_folder(
    tmp_path: Path, code: int, error: type[BatchToolError]
) -> None:
    with pytest.raises(error) as caught, writing_into(tmp_path):
        raise OSError(code, os.strerror(code))
    assert isinstance(caught.value, NoSpace | NotWritable)
    assert caught.value.folder == str(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_a_file_that_cannot_be_read_elsewhere_is_named_not_the_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught, writing_into(tmp_path / "out"):
        open(tmp_path / "missing.jsonl", "rb")  # noqa: SIM115 - the error is the point
    assert not isinstance(caught.value, NotWritable)
    assert "missing.jsonl" in str(caught.value)


def test_a_write_onto_a_full_device_is_no_space(tmp_path: Path) -> None:
    """/dev/full: a real device on which every write fails with ENOSPC (even for root)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with pytest.raises(NoSpace), writing_into(Path("/dev")), open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")


def make_stale_scratch(folder: Path) -> list[Path]:
    """What a killed fetch leaves (nobody holds a lock on it), in this version's names and in earlier ones'."""
    scratch = folder / ".fetch-0123456789ab"
    (scratch / "sub").mkdir(parents=True)
    (scratch / ".output.jsonl.a1b2c3d4e5f6.partial").write_bytes(b"half a download")
    legacy = folder / ".fetch-k2x_9qzp"
    legacy.mkdir()
    (legacy / "output.jsonl").write_bytes(b"{}\n")
    partial = folder / ".batch_1-results-2.csv.00aa11bb22cc.partial"
    partial.write_bytes(b"custom_id,status\n")
    return [scratch, legacy, partial]


def test_stale_scratch_is_removed_but_not_a_live_runs_nor_anything_not_ours(tmp_path: Path) -> None:
    stale = make_stale_scratch(tmp_path)
    not_ours = [
        tmp_path / ".fetch-mine",
        tmp_path / ".notes.txt.partial",
        tmp_path / ".my-results.jsonl.00aa11bb22cc.partial",  # e.g. a build writing into the same folder
        tmp_path / "batch_1-results.jsonl",
    ]
    not_ours[0].mkdir()
    for path in not_ours[1:]:
        path.write_bytes(b"keep")

    with scratch_folder(tmp_path) as live:
        (live / "output.jsonl").write_bytes(b"being downloaded")
        remove_stale_scratch(tmp_path)
        assert (live / "output.jsonl").exists()
    assert not live.exists()  # removed when its block ends
    assert [path for path in stale if path.exists()] == []
    assert [path for path in not_ours if path.exists()] == not_ours
