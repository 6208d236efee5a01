"""Atomic file writes: a temporary file beside the target, then a rename (or a link, to never overwrite)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from aoai_batch.errors import FileInTheWay


@contextlib.contextmanager
def atomic_writer(path: Path, *, overwrite: bool = False, buffering: int = -1) -> Iterator[IO[bytes]]:
    """Yield a binary file that appears at `path` only if the block completes.

    Without `overwrite`, an existing `path` is refused before anything is written, and a file that
    appears meanwhile is never replaced (see `publish`).
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise _taken(path)
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
        raise _taken(path) from exc
    except OSError:  # file systems without hard links
        if path.exists():
            raise _taken(path) from None
        os.replace(tmp, path)


def _taken(path: Path) -> FileInTheWay:
    return FileInTheWay(path)


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
