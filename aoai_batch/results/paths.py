"""Where a fetch writes: the results, errors and retry files' names in the output folder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aoai_batch.results.join import ResultFormat


@dataclass(frozen=True)
class ResultPaths:
    results: Path
    errors: Path
    retry: Path


def plan_paths(output_dir: Path, batch_id: str, format: ResultFormat, *, overwrite: bool = False) -> ResultPaths:
    """Where a fetch writes; without `overwrite`, the first `-N` suffix under which no file exists yet."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", batch_id).lstrip(".") or "batch"
    n = 1
    while True:
        suffix = "" if n == 1 else f"-{n}"
        paths = ResultPaths(
            results=output_dir / f"{stem}-results{suffix}.{format}",
            errors=output_dir / f"{stem}-errors{suffix}.jsonl",
            retry=output_dir / f"{stem}-retry{suffix}.jsonl",
        )
        if overwrite or not any(p.exists() for p in (paths.results, paths.errors, paths.retry)):
            return paths
        n += 1
