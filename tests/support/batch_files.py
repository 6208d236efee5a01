"""Request lines and batch files, as a person would write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def request_line(custom_id: str, text: str = "hello", model: str = "gpt-4o-mini", **body: Any) -> dict[str, Any]:
    """One chat-completions request of a batch file; `body` adds fields beside model and messages."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}], **body},
    }


def question_line(n: int, deployment: str = "gpt-4o-mini") -> bytes:
    """Request `task-{n}`, asking `Question {n}?`, as the bytes of one line."""
    return orjson.dumps(request_line(f"task-{n}", f"Question {n}?", model=deployment, max_tokens=20))


def write_lines(path: Path, *lines: object) -> Path:
    """Each value as one JSON line."""
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def write_batch_file(path: Path, count: int = 3, **body: Any) -> Path:
    """`count` requests `task-0`... asking `question 0`...; `body` as in `request_line`."""
    return write_lines(path, *(request_line(f"task-{i}", f"question {i}", **body) for i in range(count)))


def write_workspace_batch(folder: Path, name: str = "input.jsonl", requests: int = 3) -> Path:
    """A batch file of `question_line`s in `folder` (made if missing), as the tools' tests upload it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"\n".join(question_line(n) for n in range(requests)) + b"\n")
    return path


def jsonl(data: bytes) -> list[dict[str, Any]]:
    """The objects of a JSONL file's bytes, blank lines skipped."""
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]
