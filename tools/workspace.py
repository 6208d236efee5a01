"""Where tools may read and write: the workspace folders from settings plus the client's MCP roots.

A path is allowed only if it resolves (symlinks followed) inside one of those folders. `..` is refused
outright, even when it would land back inside: a path that climbs is a mistake or an attack, and saying
so is clearer than guessing. Relative paths resolve against the first workspace folder, which is also
where generated files go by default.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from urllib.parse import unquote, urlparse

from aoai_batch.errors import InvalidInput, PathNotAllowed


def path_from_uri(uri: str) -> Path | None:
    """The local folder of a `file://` root URI; None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parsed.path))


class Workspace:
    """The folders tools may touch; `resolve` is the one gate every tool path goes through."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        if not dirs:
            raise ValueError("a workspace needs at least one folder")
        self.dirs = [Path(d).expanduser().resolve() for d in dirs]

    @property
    def default_dir(self) -> Path:
        """Where relative paths resolve and generated files go."""
        return self.dirs[0]

    def ensure(self) -> None:
        """Create the default folder (the others are the user's and must already exist)."""
        self.default_dir.mkdir(parents=True, exist_ok=True)

    def allowed(self, roots: Iterable[Path] = ()) -> list[Path]:
        """The workspace folders and the client's roots, symlinks resolved."""
        folders = list(self.dirs)
        for root in roots:
            resolved = Path(root).expanduser().resolve()
            if resolved not in folders:
                folders.append(resolved)
        return folders

    def resolve(self, path: str, *, roots: Iterable[Path] = (), must_exist: bool = False) -> Path:
        """The real path for `path`, or PathNotAllowed if it leaves the workspace and the roots.

        Raises InvalidInput for an empty path, or for a missing file when `must_exist`.
        """
        raw = path.strip()
        if not raw:
            raise InvalidInput("The path is empty; give a file name inside the workspace.")
        if raw.startswith("file://"):
            raw = str(path_from_uri(raw) or raw)
        candidate = PurePath(os.path.expanduser(raw))
        if ".." in candidate.parts:
            raise PathNotAllowed(f"{path!r} contains '..'; give a path inside the workspace ({self.default_dir}).")
        joined = Path(candidate) if candidate.is_absolute() else self.default_dir / candidate
        real = joined.resolve()
        folders = self.allowed(roots)
        if not any(real == folder or real.is_relative_to(folder) for folder in folders):
            where = ", ".join(str(f) for f in folders)
            raise PathNotAllowed(f"{path!r} is outside the workspace; use a path inside {where}.")
        if must_exist and not real.is_file():
            raise InvalidInput(f"{path!r} does not exist (looked for {real}); check the name or build the file first.")
        return real

    def output_path(self, path: str | None, default_name: str, *, roots: Iterable[Path] = ()) -> Path:
        """Where to write: `path` if given (checked like any other), else `default_name` in the default folder."""
        return self.resolve(path if path else default_name, roots=roots)

    def output_dir(self, path: str | None, default_name: str, *, roots: Iterable[Path] = ()) -> Path:
        """A folder to write into, checked like a path; created if missing."""
        folder = self.output_path(path, default_name, roots=roots)
        if folder.exists() and not folder.is_dir():
            raise InvalidInput(f"{folder} is a file, not a folder; give a folder for the output.")
        folder.mkdir(parents=True, exist_ok=True)
        return folder
