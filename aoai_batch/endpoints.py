"""Batch endpoints as written in files and requests: OpenAI's `/v1/chat/completions` is Azure's `/chat/completions`.

Both sides use it (the client, the validator and the emulator), so it lives beside neither.
"""

from __future__ import annotations


def bare_endpoint(url: str) -> str:
    """`url` without OpenAI's `/v1` prefix (`/v1/responses` -> `/responses`); any other path as given."""
    return url[3:] if url.startswith("/v1/") else url
