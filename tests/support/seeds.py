"""Azure's batch documentation (`../shared/seeds/*.txt`, the pages this product was specified from), read
at test time: its JSON samples, its Python cells and its REST calls.

The pages are as published, typos included: some JSON samples have typographic quotes and trailing commas
(read leniently here), and one page is a scrape whose code lost its indentation (see `seed_cells/`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SEEDS_DIR = Path(os.environ.get("AOAI_SEEDS_DIR") or ROOT.parent / "shared" / "seeds")
PYTHON_FENCE = re.compile(r"^```[Pp]ython\n(.*?)^```", re.DOTALL | re.MULTILINE)
TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def seed_texts() -> dict[str, str]:
    """Each seed page's name and text; fails (never skips) when the seeds are not beside the repository."""
    paths = sorted(SEEDS_DIR.glob("*.txt"))
    if not paths:
        raise FileNotFoundError(f"No seed pages in {SEEDS_DIR}; set AOAI_SEEDS_DIR to the folder of Azure's docs.")
    return {path.name: path.read_text(encoding="utf-8") for path in paths}


def seed_text(prefix: str) -> str:
    """The page whose file name starts with `prefix` (e.g. '001')."""
    (text,) = [text for name, text in seed_texts().items() if name.startswith(prefix)]
    return text


def lenient_json(text: str) -> Any:
    """JSON as the docs print it: typographic quotes straightened, trailing commas dropped."""
    straight = text.replace("\u201c", '"').replace("\u201d", '"')
    return json.loads(TRAILING_COMMA.sub(r"\1", straight))


def json_objects(text: str, start: int = 0) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each top-level JSON object in `text` from `start` on that parses."""
    position = text.find("{", start)
    while position != -1:
        end = _matching_brace(text, position)
        value = None
        if end is not None:
            try:
                value = lenient_json(text[position:end])
            except ValueError:
                value = None
        if value is not None and end is not None:
            yield position, end, value
            position = text.find("{", end)
        else:
            position = text.find("{", position + 1)


def first_json_after(text: str, start: int) -> Any:
    """The first JSON object of `text` after `start` (the sample output printed after a cell or a call)."""
    return next(json_objects(text, start))[2]


def batch_samples() -> list[dict[str, Any]]:
    """Every batch object the seeds show (in list answers too)."""
    samples: list[dict[str, Any]] = []
    for text in seed_texts().values():
        for _, _, value in json_objects(text):
            samples += _batches_in(value)
    return samples


def python_cells(text: str) -> list[tuple[int, str]]:
    """(offset, code) of each fenced ```python cell of a markdown page."""
    return [(match.start(1), match.group(1)) for match in PYTHON_FENCE.finditer(text)]


def curl_commands(text: str) -> list[tuple[int, str]]:
    """(end offset, command) of each `curl` call, its backslash-continued lines joined."""
    lines = text.splitlines(keepends=True)
    starts = list(itertools.accumulate((len(line) for line in lines), initial=0))
    commands: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("curl "):
            index += 1
            continue
        command = ""
        while index < len(lines):
            part = lines[index].rstrip("\n")
            index += 1
            if part.endswith("\\"):
                command += part[:-1].strip() + " "
            elif _quotes_open(command + part):  # a quoted -d body spans lines
                command += part + "\n"
            else:
                command += part.strip()
                break
        commands.append((starts[index], command))
    return commands


def shape(value: Any) -> Any:
    """The keys of a JSON value, recursively (a list by its first item): what 'the same shape' compares."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def missing_keys(sample: Any, actual: Any, path: str = "") -> list[str]:
    """Paths of the keys the sample has that `actual` lacks (recursively; lists by their first items).
    A null in `actual` matches anything: the seeds show the same fields null in one sample, set in another."""
    if actual is None:
        return []
    if isinstance(sample, dict):
        if not isinstance(actual, dict):
            return [path or "."]
        missing = [f"{path}.{key}" for key in sample if key not in actual]
        for key, item in sample.items():
            if key in actual:
                missing += missing_keys(item, actual[key], f"{path}.{key}")
        return missing
    if isinstance(sample, list) and sample and isinstance(actual, list) and actual:
        return missing_keys(sample[0], actual[0], f"{path}[0]")
    return []


def _quotes_open(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:
        return True
    return False


def _batches_in(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        found = [value] if value.get("object") == "batch" else []
        return found + [b for item in value.values() for b in _batches_in(item)]
    if isinstance(value, list):
        return [b for item in value for b in _batches_in(item)]
    return []


def _matching_brace(text: str, start: int) -> int | None:
    depth = 0
    in_string = False
    index = start
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None
