"""The async batch client: one client over the `openai` SDK for Azure, Azure v1, OpenAI and the emulator.

Importing this package does not import `openai` (see `core`).
"""

from aoai_batch.client.connection import AsyncCredential, Connection, connection_from_settings, emulator_connection
from aoai_batch.client.core import IDEMPOTENCY_METADATA_KEY, BatchClient, Sleep

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "AsyncCredential",
    "BatchClient",
    "Connection",
    "Sleep",
    "connection_from_settings",
    "emulator_connection",
]
