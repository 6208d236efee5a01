"""Fixtures of the emulator's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from aoai_batch.emulator import Emulator


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx2.AsyncClient]:
    """A raw HTTP client on the in-process emulator, with its key."""
    headers = {"api-key": emulator.key}
    async with httpx2.AsyncClient(transport=emulator.transport(), base_url="http://emu", headers=headers) as client:
        yield client
