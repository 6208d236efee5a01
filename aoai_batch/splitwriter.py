"""Writing JSONL lines into one or more files that each stay within the request and byte limits.

Parts are written to temporary files beside the target and appear under their final names only when
`publish` is called: `name.jsonl` if everything fit in one file, else `name-001.jsonl`, `name-002.jsonl`, ...
Nothing is overwritten unless asked, and a failure leaves no file behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from aoai_batch.errors import FileInTheWay, InvalidInput
from aoai_batch.fileio import open_temp_beside, publish

WRITE_BUFFER = 1 << 20


@dataclass
class Part:
    temp: Path
    handle: IO[bytes]
    requests: int = 0
    bytes: int = 0


class SplitWriter:
    """Use as a context manager; `write` lines, then `publish()` inside the block."""

    def __init__(self, output_path: Path, *, max_requests: int, max_bytes: int, overwrite: bool = False) -> None:
        self.output_path = Path(output_path)
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.overwrite = overwrite
        self._parts: list[Part] = []
        # The current part's room, kept as plain numbers: `write` runs once per request.
        self._requests_left = 0
        self._bytes_left = 0
        self._write: Callable[[bytes], object] = _no_part
        if not overwrite and self.output_path.exists():
            raise FileInTheWay(self.output_path)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._discard()

    def write(self, line: bytes) -> bool:
        """Append one line (ending in a newline); True when it starts a new part."""
        size = len(line)
        started = self._requests_left == 0 or size > self._bytes_left
        if started:
            if size > self.max_bytes:
                raise InvalidInput(
                    f"Request {self.total_requests + 1} is {size} bytes, more than the {self.max_bytes}-byte "
                    "file limit; shorten it (e.g. smaller images)."
                )
            self._new_part()
        self._write(line)
        self._requests_left -= 1
        self._bytes_left -= size
        return started

    @property
    def parts(self) -> list[Part]:
        """The parts so far, with their counts up to date."""
        self._settle()
        return self._parts

    def _settle(self) -> None:
        if self._parts:
            current = self._parts[-1]
            current.requests = self.max_requests - self._requests_left
            current.bytes = self.max_bytes - self._bytes_left

    @property
    def total_requests(self) -> int:
        return sum(part.requests for part in self.parts)

    def final_paths(self) -> list[Path]:
        if len(self.parts) <= 1:
            return [self.output_path]
        stem, suffix = self.output_path.stem, self.output_path.suffix
        return [self.output_path.with_name(f"{stem}-{n:03d}{suffix}") for n in range(1, len(self.parts) + 1)]

    def publish(self) -> list[Path]:
        """Give every part its final name; all or none (names taken meanwhile are an InvalidInput)."""
        targets = self.final_paths()
        if not self.overwrite:
            taken = [str(path) for path in targets if path.exists()]
            if taken:
                raise FileInTheWay(taken[0], f"{', '.join(taken)} already exist.")
        for part in self.parts:
            part.handle.flush()
            os.fsync(part.handle.fileno())
            part.handle.close()
        published: list[Path] = []
        try:
            for part, target in zip(self.parts, targets, strict=True):
                publish(part.temp, target, overwrite=self.overwrite)
                published.append(target)
        except BaseException:
            for path in published:
                path.unlink(missing_ok=True)
            raise
        return targets

    def _new_part(self) -> Part:
        temp, fd = open_temp_beside(self.output_path)
        part = Part(temp, os.fdopen(fd, "wb", buffering=WRITE_BUFFER))
        self._settle()
        self._parts.append(part)
        self._requests_left, self._bytes_left, self._write = self.max_requests, self.max_bytes, part.handle.write
        return part

    def _discard(self) -> None:
        for part in self._parts:
            part.handle.close()
            part.temp.unlink(missing_ok=True)


def _no_part(line: bytes) -> object:
    raise AssertionError("write() opens a part before writing")
