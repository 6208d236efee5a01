"""Text shown to people or models in a bounded space: one way to cut it short."""

from __future__ import annotations

from typing import overload

ELLIPSIS = "…"


@overload
def truncate(text: str, limit: int) -> str: ...
@overload
def truncate(text: None, limit: int) -> None: ...
@overload
def truncate(text: str | None, limit: int) -> str | None: ...
def truncate(text: str | None, limit: int) -> str | None:
    """`text` in at most `limit` characters (at least 1): cut, it ends with an ellipsis; None stays None."""
    if text is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS
