"""Atomic file writes: a temporary file beside the target, then a rename (or a link, to never overwrite).

Also the scratch folders of downloads (locked while in use, so that the stale ones a killed run left can be
told from a live run's and removed) and the one translation of a failed write into the error tree.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from aoai_batch.errors import BatchToolError, FileInTheWay, InvalidInput, NoSpace, NotWritable

if sys.platform != "win32":
    import fcntl

NO_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
SCRATCH_PREFIX = ".fetch-"
# Ours only: the scratch folders of this version and of earlier ones (tempfile's names), and the partial
# results (named after batch ids) that earlier versions wrote beside the results; this one writes them in
# its scratch folder.
SCRATCH_NAME = re.compile(r"\.fetch-(?:[0-9a-f]{12}|[a-z0-9_]{8})")
PARTIAL_RESULTS_NAME = re.compile(
    r"\.batch[A-Za-z0-9_.-]*-(?:results|errors|retry)(?:-\d+)?\.(?:jsonl|csv)\.[0-9a-f]{12}\.partial"
)
STALE_SECONDS = 86_400.0  # where there are no file locks (Windows), scratch this old is taken for stale


@contextlib.contextmanager
def atomic_writer(path: Path, *, overwrite: bool = False, buffering: int = -1) -> Iterator[IO[bytes]]:
    """Yield a binary file that appears at `path` only if the block completes.

    Without `overwrite`, an existing `path` is refused before anything is written, and a file that
    appears meanwhile is never replaced (see `publish`).
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileInTheWay(path)
    tmp, fd = open_temp_beside(path)
    try:
        with os.fdopen(fd, "wb", buffering=buffering) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        publish(tmp, path, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def open_temp_beside(path: Path) -> tuple[Path, int]:
    """Create a hidden `.partial` file in `path`'s folder; return it and its open descriptor.

    Not `mkstemp`: it makes files private (0600), and what we write should get the permissions the
    user's umask gives any new file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.partial"
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give the finished file `tmp` its final name `path`.

    Without `overwrite` the final step is a hard link, which fails if the name exists, so a file that
    appeared meanwhile is never replaced; `tmp` is left for the caller to remove.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise FileInTheWay(path) from exc
    except OSError:  # file systems without hard links
        if path.exists():
            raise FileInTheWay(path) from None
        os.replace(tmp, path)


def publish_all(moves: Iterable[tuple[Path | None, Path]], *, overwrite: bool) -> None:
    """Give finished files (`tmp`, `path` pairs; a None `tmp` is skipped) their names, all or none: if one
    fails, those already published are taken back (without `overwrite` their names were free)."""
    published: list[Path] = []
    try:
        for tmp, path in moves:
            if tmp is not None:
                publish(tmp, path, overwrite=overwrite)
                published.append(path)
    except BaseException:
        if not overwrite:
            for path in published:
                path.unlink(missing_ok=True)
        raise


def free_path(path: Path) -> Path:
    """`path` if no file has that name, else the first of `stem-2.ext`, `stem-3.ext`, ... that is free."""
    path = Path(path)
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def write_error(exc: OSError, folder: Path) -> BatchToolError:
    """The error tree's counterpart of a failed write into `folder`: a full disk, or a folder that cannot be written."""
    cause = exc.strerror or type(exc).__name__
    if exc.filename is not None and not _on_the_way(Path(exc.filename), folder):
        return InvalidInput(f"{exc.filename} cannot be read ({cause}).")
    if exc.errno in NO_SPACE:
        return NoSpace(
            f"Cannot write into {folder}: {cause}; free some space there or choose another output folder.",
            folder=str(folder),
        )
    return NotWritable(f"Cannot write into {folder}: {cause}; choose another output folder.", folder=str(folder))


def _on_the_way(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder`, inside it, or one of the folders above it (made on the way)."""
    return path.is_relative_to(folder) or folder.is_relative_to(path)


@contextlib.contextmanager
def writing_into(folder: Path) -> Iterator[None]:
    """Translate a failed file operation in the block (permissions, read-only, full disk...) once, naming `folder`."""
    try:
        yield
    except (ConnectionError, TimeoutError):
        raise  # network errors, not the folder's
    except OSError as exc:
        if exc.errno is None:
            raise
        raise write_error(exc, folder) from exc


@contextlib.contextmanager
def scratch_folder(folder: Path) -> Iterator[Path]:
    """A new hidden folder inside `folder`, locked while the block runs (so no sweep takes it), then removed."""
    while True:
        path = folder / f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        lock = _lock(path) if sys.platform != "win32" else -1
        if lock is not None:
            break  # else a sweep got to it first, and removes it
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if lock >= 0:
            os.close(lock)


def remove_stale_scratch(folder: Path) -> None:
    """Remove what killed runs left in `folder`: scratch folders and partial results that no live process holds."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if SCRATCH_NAME.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            _remove_if_stale(Path(entry.path), lambda path: shutil.rmtree(path, ignore_errors=True))
        elif PARTIAL_RESULTS_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            _remove_if_stale(Path(entry.path), lambda path: path.unlink(missing_ok=True))


def _remove_if_stale(path: Path, remove: Callable[[Path], None]) -> None:
    if sys.platform == "win32":
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > STALE_SECONDS:
                remove(path)
        return
    lock = _lock(path)
    if lock is None:
        return  # a live run's
    try:
        with contextlib.suppress(OSError):
            remove(path)
    finally:
        os.close(lock)


if sys.platform != "win32":

    def _lock(path: Path) -> int | None:
        """An open descriptor of `path` holding its exclusive lock, or None if another process holds it (or it is gone).

        The lock goes with the process that holds it, however it ends: that is how stale scratch is told.
        """
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The lock is on what was opened: `path` must still name it (a sweep may have removed it meanwhile).
            if os.path.samestat(os.stat(path), os.fstat(fd)):
                return fd
        except OSError:
            pass
        os.close(fd)
        return None
