"""The job registry's database: one small async interface, two engines (SQLite files, PostgreSQL servers).

`Store` and `RunRecords` write their SQL once against it, with `?` placeholders and the portable subset both
engines run (`ON CONFLICT ... DO UPDATE/NOTHING`, row values, no rowid); what differs is behind an engine:
the placeholders' spelling, reading a JSON field, the DDL's types, where the schema version is kept, and the
change feed (PostgreSQL's LISTEN/NOTIFY; nothing on SQLite, whose processes see changes by reading the file).
Rows come back as mappings by column name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

DatabaseEngine = Literal["sqlite", "postgresql"]
Row = Mapping[str, Any]
CHANGES_CHANNEL = "aoai_batch_changes"


class Transaction(Protocol):
    """Statements of one transaction: committed together when the block ends, rolled back on an error."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def lock(self, name: str) -> None:
        """Hold a lock on `name` until the transaction ends: writers of other processes wait for it
        (PostgreSQL: an advisory lock; SQLite: nothing, its write transaction already excludes every other)."""
        ...


class Database(Protocol):
    engine: DatabaseEngine

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read, outside any transaction."""
        ...

    def json_text(self, column: str, key: str) -> str:
        """An SQL expression: the text of the top-level `key` of the JSON in `column` (NULL when absent),
        compared byte by byte."""
        ...

    async def migrate(self, migrations: Sequence[str]) -> None:
        """Bring the schema up to `len(migrations)`, each migration run once even by processes opening together."""
        ...

    async def announce(self, payload: str) -> None: ...

    def listen(self) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """The payloads other connections announce, from when the block is entered."""
        ...

    async def close(self) -> None: ...


def statements(script: str) -> list[str]:
    """The statements of a migration script (no `;` inside the DDL's text)."""
    return [statement for statement in script.split(";") if statement.strip()]
