"""Who a request is from, when users sign in (SPEC §10): what the registry records as a job's owner."""

from __future__ import annotations

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
