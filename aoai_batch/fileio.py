"""Atomic file writes: a temporary file beside the target, then a rename (or a link, to never overwrite)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from aoai_batch.errors import InvalidInput


@contextlib.contextmanager
def atomic_writer(path: Path, *, overwrite: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file that appears at `path` only if the block completes.

    Without `overwrite`, an existing `path` is refused before anything is written, and a file that
    appears meanwhile is never replaced (the final step is a hard link, which fails if the name exists).
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise InvalidInput(f"{path} already exists; choose another name or ask to overwrite it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def _publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise InvalidInput(f"{path} already exists; choose another name or ask to overwrite it.") from exc
    except OSError:  # file systems without hard links
        if path.exists():
            raise InvalidInput(f"{path} already exists; choose another name or ask to overwrite it.") from None
        os.replace(tmp, path)


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
