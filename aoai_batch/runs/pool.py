"""The deployments a run may use: this server's own resource's, and those of the `AOAI_BATCH_POOL` file.

Each pool resource (an endpoint with its credentials) is reached through a `BatchService` of its own; they
share one connection to the main service's registry (`BatchService.open(store=...)`), so a shard's upload,
batch and results are in the same registry as everything else, under the same idempotency keys, and every
batch on a pool resource is marked with it (`Batch.resource`), so the main service never asks its own
resource about it. A name the pool file does not give is a deployment of this server's own resource.

Limits, as the ledger takes them (`LimitSource`): the pool entry's `enqueued_tokens` ("pool"), else
`AOAI_BATCH_ENQUEUED_TOKENS` for that name ("settings"), else unknown (None).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from aoai_batch.client import Sleep
from aoai_batch.errors import UnknownDeployment
from aoai_batch.pool_file import PoolEntry
from aoai_batch.runs.models import LimitSource
from aoai_batch.service import BatchService, Clock
from aoai_batch.settings import Settings, load_pool
from aoai_batch.store import Store

if TYPE_CHECKING:
    import httpx2

DEFAULT_RESOURCE = "default"  # `PoolDeployment.resource` of this server's own deployments
TransportFor = Callable[[str], "httpx2.AsyncBaseTransport | None"]


@dataclass(frozen=True, slots=True)
class PoolDeployment:
    """A deployment a run may name, where it is, and its enqueued-token limit when known."""

    name: str  # what a run's `deployments` names (the pool entry's `name`, by default its deployment)
    deployment: str  # its name on its resource: what the shard lines' body.model say
    resource: str  # DEFAULT_RESOURCE for this server's own resource, else the pool entry's endpoint
    enqueued_tokens: int | None
    limit_source: LimitSource | None  # "settings" | "pool" | None


class ServicePool:
    """The services that reach every deployment a run may use; opened beside the main service, closed with it."""

    def __init__(
        self, settings: Settings, main: BatchService, entries: Sequence[PoolEntry], services: dict[str, BatchService]
    ) -> None:
        self._settings = settings
        self._main = main
        self._entries = {entry.name: entry for entry in entries}
        self._services = services  # by pool entry name

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        main: BatchService,
        *,
        transport_for: TransportFor | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
        now: Clock = time.time,
    ) -> AsyncIterator[ServicePool]:
        """Read the pool file and open a service per pool resource (none without a pool file).

        `transport_for(endpoint)`: the transport to reach that endpoint with (tests); None: the network.
        `sleep`, `clock`, `now`: as `BatchService.open` takes them (tests move a fake clock).

        Raises:
            NotConfigured: the pool file does not exist, or an entry's key variable is not set (`setting`).
            InvalidInput: the pool file is not valid (the message names the file and the entry).
            NotWritable, RegistryLocked: the registry cannot be opened.
        """
        entries = load_pool(settings)
        async with AsyncExitStack() as stack:
            services: dict[str, BatchService] = {}
            if entries:
                store = await stack.enter_async_context(await Store.open_for(settings, now=now))
                by_resource: dict[tuple[str, str, str | None, str], BatchService] = {}
                for entry in entries:
                    key = (entry.endpoint, entry.auth, entry.api_key_env, entry.api_version)
                    if key not in by_resource:
                        transport = transport_for(entry.endpoint) if transport_for else None
                        opened = BatchService.open(
                            _resource_settings(settings, entry),
                            transport,
                            sleep=sleep,
                            clock=clock,
                            now=now,
                            store=store,
                            resource=entry.endpoint,
                        )
                        by_resource[key] = await stack.enter_async_context(opened)
                    services[entry.name] = by_resource[key]
            yield cls(settings, main, entries, services)

    def names(self) -> list[str]:
        """The pool file's deployment names, in its order."""
        return list(self._entries)

    def lookup(self, name: str) -> PoolDeployment:
        """The deployment a run calls `name`: a pool entry's, else one of this resource's.

        Raises:
            UnknownDeployment: `name` is neither the pool file's nor one this resource is known to have
                (checked only where its deployments can be known, as `build_batch_file` does).
        """
        entry = self._entries.get(name)
        limit = self._settings.enqueued_tokens.get(name)
        source: LimitSource | None = "settings" if limit is not None else None
        if entry is not None:
            if entry.enqueued_tokens is not None:
                limit, source = entry.enqueued_tokens, "pool"
            return PoolDeployment(name, entry.deployment, entry.endpoint, limit, source)
        known = self._main.file_rules.deployments
        if known is not None and name not in known:
            raise UnknownDeployment(name, sorted({*known, *self._entries}))
        return PoolDeployment(name, name, DEFAULT_RESOURCE, limit, source)

    def service(self, name: str) -> BatchService:
        """The service reaching the resource of deployment `name` (the main one for this resource's own).

        Raises:
            UnknownDeployment: as `lookup`.
        """
        if name in self._services:
            return self._services[name]
        self.lookup(name)
        return self._main


def _resource_settings(settings: Settings, entry: PoolEntry) -> Settings:
    """The server's settings, pointed at a pool entry's resource (always Azure's API: the pool is resources)."""
    return settings.model_copy(
        update={
            "endpoint": entry.endpoint,
            "api_key": entry.api_key,
            "auth": entry.auth,
            "api_version": entry.api_version,
            "provider_override": "azure",
            "openai_api_key": None,
            "openai_base_url": None,
        }
    )
