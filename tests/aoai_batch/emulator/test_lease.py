"""Leases on a real SQLite file: one owner at a time, renewed while held, taken over once expired."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aoai_batch.emulator import FakeClock
from aoai_batch.emulator.lease import LEASE_SECONDS, LeaseLost, Leases


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pair(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Leases, Leases]]:
    """Two owners on one database, as two processes sharing an emulator home."""
    first = Leases(tmp_path / "state.sqlite3", clock=clock.now, owner="first")
    second = Leases(tmp_path / "state.sqlite3", clock=clock.now, owner="second")
    first.open()
    second.open()
    yield first, second
    first.close()
    second.close()


def test_a_held_lease_is_refused_to_another_owner_until_released(pair: tuple[Leases, Leases]) -> None:
    first, second = pair
    assert first.take("batch_1")
    assert not second.take("batch_1")
    assert second.take("batch_2")  # leases are per batch
    first.release("batch_1")
    assert second.take("batch_1")


def test_an_expired_lease_is_taken_over_and_its_old_owner_cannot_renew_it(
    pair: tuple[Leases, Leases], clock: FakeClock
) -> None:
    first, second = pair
    assert first.take("batch_1")
    clock.advance(LEASE_SECONDS - 1)
    first.renew("batch_1")
    clock.advance(LEASE_SECONDS - 1)
    assert not second.take("batch_1")  # renewed: not expired yet
    clock.advance(1)
    assert second.take("batch_1")
    with pytest.raises(LeaseLost):
        first.renew("batch_1")


def test_holding_is_reentrant_and_gives_the_lease_back_at_the_end(pair: tuple[Leases, Leases]) -> None:
    first, second = pair
    with first.holding("batch_1") as outer:
        with first.holding("batch_1") as inner:
            assert (outer, inner) == (True, True)
        with second.holding("batch_1") as other:
            assert other is False
    with second.holding("batch_1") as other:
        assert other is True


def test_closing_gives_back_every_lease_of_the_owner(pair: tuple[Leases, Leases]) -> None:
    first, second = pair
    assert first.take("batch_1")
    first.close()
    assert second.take("batch_1")
