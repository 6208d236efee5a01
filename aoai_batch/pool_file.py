"""The pool file (`AOAI_BATCH_POOL`, SPEC §9): Global-Batch deployments on other Azure resources a run may use.

TOML, one `[[deployments]]` table per deployment:

    [[deployments]]
    name = "west-mini"                     # what a run's `deployments` say; default: the deployment's name
    endpoint = "https://west.openai.azure.com"
    deployment = "gpt-4o-mini"             # its name on that resource (what the shard lines' body.model say)
    auth = "key"                           # "key" or "entra"; default: key when api_key_env is given
    api_key_env = "WEST_OPENAI_API_KEY"    # the NAME of the variable holding its key (never the key itself)
    api_version = "2024-10-21"             # default: the server's AZURE_OPENAI_API_VERSION
    enqueued_tokens = "1M"                 # its enqueued-token limit (a number, or K/M/B); default: unknown

Parsed here; the key variables are read by `settings.load_pool` (the only reader of the environment), which
hands `parse_pool` a lookup. Every error names the file and the entry.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, SecretStr

from aoai_batch.errors import InvalidInput, NotConfigured
from aoai_batch.quota import parse_token_amount

PoolAuth = Literal["key", "entra"]
POOL_VARIABLE = "AOAI_BATCH_POOL"
ENTRY_KEYS = frozenset({"name", "endpoint", "deployment", "auth", "api_key_env", "api_version", "enqueued_tokens"})
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KeyLookup = Callable[[str], SecretStr | None]


class PoolEntry(BaseModel):
    """One deployment of the pool file, its key resolved (never shown: `api_key` is a secret)."""

    model_config = ConfigDict(frozen=True)

    name: str
    endpoint: str
    deployment: str
    auth: PoolAuth
    api_key_env: str | None = None
    api_key: SecretStr | None = None
    api_version: str
    enqueued_tokens: int | None = None

    @property
    def endpoint_host(self) -> str:
        return urlparse(self.endpoint).hostname or self.endpoint


def read_pool(path: Path, *, api_version: str, key_of: KeyLookup) -> list[PoolEntry]:
    """The entries of the pool file at `path`; `key_of(name)` is the value of a key variable (None: unset).

    Raises:
        NotConfigured: the file does not exist (`setting="AOAI_BATCH_POOL"`), or an entry's `api_key_env`
            variable is not set (`setting` is that variable's name).
        InvalidInput: the file cannot be read or is not TOML, or an entry is wrong (the message names the
            file, the entry and the field).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotConfigured(f"The pool file {path} ({POOL_VARIABLE}) does not exist.", setting=POOL_VARIABLE) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"The pool file {path} ({POOL_VARIABLE}) cannot be read: {exc}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"The pool file {path} is not valid TOML: {exc}.") from None
    return parse_pool(path, data, api_version=api_version, key_of=key_of)


def parse_pool(path: Path, data: dict[str, Any], *, api_version: str, key_of: KeyLookup) -> list[PoolEntry]:
    """The entries of a pool file already read as TOML (`read_pool` says what it raises)."""
    extra = sorted(set(data) - {"deployments"})
    if extra:
        raise InvalidInput(f"The pool file {path} has {', '.join(extra)}; it holds only [[deployments]] tables.")
    tables = data.get("deployments", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise InvalidInput(f"In the pool file {path}, `deployments` must be [[deployments]] tables.")
    entries: list[PoolEntry] = []
    for number, table in enumerate(tables, start=1):
        entry = _entry(_Where(path, number, table), table, api_version, key_of)
        if any(known.name == entry.name for known in entries):
            raise InvalidInput(
                f"The pool file {path} names {entry.name!r} twice (entry {number}); give each entry its own `name`."
            )
        entries.append(entry)
    return entries


class _Where:
    """Which entry of which file, for its errors."""

    def __init__(self, path: Path, number: int, table: dict[str, Any]) -> None:
        name = table.get("name") or table.get("deployment")
        self.label = f"entry {number}" + (f" ({name!r})" if isinstance(name, str) and name else "")
        self.path = path

    def error(self, problem: str) -> InvalidInput:
        return InvalidInput(f"In the pool file {self.path}, {self.label}: {problem}.")

    def text(self, table: dict[str, Any], key: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"`{key}` must be a non-empty string" if value is not None else f"`{key}` is required")
        return value.strip()


def _entry(where: _Where, table: dict[str, Any], default_version: str, key_of: KeyLookup) -> PoolEntry:
    unknown = sorted(set(table) - ENTRY_KEYS)
    if unknown:
        raise where.error(f"unknown {', '.join(unknown)} (an entry takes {', '.join(sorted(ENTRY_KEYS))})")
    endpoint = where.text(table, "endpoint", required=True) or ""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise where.error(f"`endpoint` must be a URL like https://RESOURCE.openai.azure.com, not {endpoint!r}")
    deployment = where.text(table, "deployment", required=True) or ""
    key_env = where.text(table, "api_key_env")
    auth = where.text(table, "auth") or ("key" if key_env else "entra")
    if auth not in ("key", "entra"):
        raise where.error(f"`auth` must be key or entra, not {auth!r}")
    key: SecretStr | None = None
    if key_env is not None:
        if not VARIABLE_NAME.fullmatch(key_env):
            raise where.error(f"`api_key_env` must name an environment variable, not {key_env!r} (never the key)")
        key = key_of(key_env)
        if key is None and auth == "key":
            raise NotConfigured(
                f"The pool file {where.path}, {where.label}: its key variable {key_env} is not set.", setting=key_env
            )
    elif auth == "key":
        raise where.error("auth key needs `api_key_env`, the name of the variable holding the key")
    return PoolEntry(
        name=where.text(table, "name") or deployment,
        endpoint=endpoint.rstrip("/"),
        deployment=deployment,
        auth="key" if auth == "key" else "entra",
        api_key_env=key_env,
        api_key=key,
        api_version=where.text(table, "api_version") or default_version,
        enqueued_tokens=_tokens(where, table.get("enqueued_tokens")),
    )


def _tokens(where: _Where, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise where.error('`enqueued_tokens` must be a number of tokens, e.g. 1000000 or "1M"')
    try:
        tokens = value if isinstance(value, int) else parse_token_amount(value)
    except ValueError as exc:
        raise where.error(f"`enqueued_tokens`: {exc}") from None
    if tokens <= 0:
        raise where.error("`enqueued_tokens` must be at least 1")
    return tokens
