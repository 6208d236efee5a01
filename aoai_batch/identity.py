"""Who a request is from, when users sign in (SPEC §10): what the registry records as a job's owner, and the
viewer a call runs as (whose jobs it may see and change)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """A signed-in user (or app), as the token's issuer vouches for them.

    `subject` is the token's `sub`; `object_id` Entra ID's `oid` (the same user in every app of the tenant,
    where `sub` differs per app) and `tenant_id` its `tid`. The issuer is the one the server trusts, so
    `owner` is unique on this server.
    """

    issuer: str
    subject: str
    object_id: str | None = None
    tenant_id: str | None = None

    @property
    def owner(self) -> str:
        """The id a job's owner is recorded under: Entra's `oid` when there is one, else `sub`."""
        return self.object_id or self.subject


@dataclass(frozen=True)
class Viewer:
    """Who the current call is for: a signed-in user's `owner` id, and whether every job is shared.

    The core asks `may_see` of every job it reads, changes or lists for a call; what it creates records
    `owner`. No viewer (stdio, a static token, the CLI, background work) sees and changes everything and
    records no owner.
    """

    owner: str
    shared: bool = False

    def may_see(self, owner: str | None) -> bool:
        """Whether a job of `owner` is this viewer's to see and change: their own, or any when jobs are shared.

        A job with no owner (made without sign-in, or outside this server) is not any signed-in user's own."""
        return self.shared or (owner is not None and owner == self.owner)


_viewer: ContextVar[Viewer | None] = ContextVar("aoai_batch_viewer", default=None)


def current_viewer() -> Viewer | None:
    """The viewer the current call runs under (`acting_as`); None: unrestricted and owner-less."""
    return _viewer.get()


def current_owner() -> str | None:
    """The owner what the current call creates is recorded under (None without a viewer)."""
    viewer = _viewer.get()
    return viewer.owner if viewer is not None else None


def may_see(owner: str | None) -> bool:
    """The one rule: whether the current call may see and change a job recorded under `owner`."""
    viewer = _viewer.get()
    return viewer is None or viewer.may_see(owner)


def restricted() -> Viewer | None:
    """The current viewer when it sees only its own jobs (listings are then filtered); None otherwise."""
    viewer = _viewer.get()
    return viewer if viewer is not None and not viewer.shared else None


@contextmanager
def acting_as(viewer: Viewer | None) -> Iterator[None]:
    """Run the body (and the tasks it starts) as `viewer`; None: unrestricted (background work)."""
    token = _viewer.set(viewer)
    try:
        yield
    finally:
        _viewer.reset(token)
