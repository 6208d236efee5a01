"""Whether a run's `source_path` is already a batch file (run as it is) or rows to build requests from.

Rows (a CSV, a JSON array, JSONL rows) never start like a batch file, whose every line is an object with
`custom_id`, `method`, `url` and `body`; so one parameter takes both and only the first line is read.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from aoai_batch.errors import InvalidInput

BATCH_LINE_KEYS = frozenset({"custom_id", "method", "url", "body"})
# How much of the first line is read: a longer one (an image inlined as base64) is judged by the keys it names.
FIRST_LINE_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"


def is_batch_file(path: Path) -> bool:
    """True when the first non-blank line of `path` is an object with custom_id, method, url and an object body.

    Raises InvalidInput when `path` cannot be read.
    """
    try:
        with path.open("rb") as handle:
            first = handle.readline(FIRST_LINE_BYTES).removeprefix(BOM)
            while first and not first.strip():
                first = handle.readline(FIRST_LINE_BYTES)
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read ({exc.strerror}).") from exc
    first = first.strip()
    if not first.startswith(b"{"):
        return False
    try:
        line = orjson.loads(first)
    except orjson.JSONDecodeError:  # cut at FIRST_LINE_BYTES, or broken: judge by the keys it names
        return all(f'"{key}"'.encode() in first for key in BATCH_LINE_KEYS)
    return isinstance(line, dict) and set(line) >= BATCH_LINE_KEYS and isinstance(line["body"], dict)
