"""The PostgreSQL engine: a registry several replicas of the server share (SPEC §10).

psycopg 3 in async mode with a pool of connections; transactions run at READ COMMITTED, so writes that read
before they write take a per-row advisory lock (`Transaction.lock`) and the rest are single conditional
statements (upserts), atomic on their own. Migrations run under one advisory lock: replicas starting
together run each once. The change feed is LISTEN/NOTIFY on a connection of its own.

Errors become the project's: a server that cannot be reached is `ConnectionFailed` naming
AOAI_BATCH_DATABASE_URL (the URL shown without its password, never logged with it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from aoai_batch.db import CHANGES_CHANNEL, DatabaseEngine, Row, statements
from aoai_batch.errors import BatchToolError, ConnectionFailed, InvalidInput, ServiceUnavailable

SETTING = "AOAI_BATCH_DATABASE_URL"
CONNECT_TIMEOUT_SECONDS = 10
POOL_SIZE = 10
MIGRATION_LOCK = 0x616F6169  # the advisory lock every replica's migration takes ("aoai")
_TYPES = ((re.compile(r"\bREAL\b"), "DOUBLE PRECISION"), (re.compile(r"\bINTEGER\b"), "BIGINT"))


def redacted(url: str) -> str:
    """The URL without its password (`postgresql://user:***@host/db`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def postgres_ddl(script: str) -> str:
    """A migration in PostgreSQL's types: SQLite's REAL is float4 there (timestamps need double precision),
    its INTEGER is 32-bit (byte offsets and token counts need 64)."""
    for pattern, replacement in _TYPES:
        script = pattern.sub(replacement, script)
    return script


def _sql(sql: str) -> str:
    """`?` placeholders in psycopg's spelling (and a literal `%` kept literal)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase:
    engine: DatabaseEngine = "postgresql"

    def __init__(self, url: str) -> None:
        self._url = url
        self.shown_url = redacted(url)
        self._backends: set[int] = set()  # the server processes of this pool's connections (own announcements)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            configure=self._configure,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
            timeout=CONNECT_TIMEOUT_SECONDS * 3,
        )

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        """Connect (once, for a clear error when the server cannot be reached), then open the pool."""
        database = cls(url)
        with _translated(database.shown_url):
            first = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            await first.close()
            await database._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS * 3)
        return database

    async def _configure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._backends.add(connection.info.backend_pid)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        with _translated(self.shown_url):
            async with (
                self._pool.connection() as connection,
                connection.transaction(),
                connection.cursor(row_factory=dict_row) as cursor,
            ):
                yield PostgresTransaction(cursor)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with _translated(self.shown_url):
            async with self._pool.connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
                await cursor.execute(_sql(sql), tuple(params))
                return list(await cursor.fetchall())

    def json_text(self, column: str, key: str) -> str:
        return f"(({column})::jsonb ->> '{key}') COLLATE \"C\""

    async def migrate(self, migrations: Sequence[str]) -> None:
        with _translated(self.shown_url):
            async with self._pool.connection() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await connection.execute("CREATE TABLE IF NOT EXISTS aoai_batch_schema (version BIGINT NOT NULL)")
                row = await (await connection.execute("SELECT version FROM aoai_batch_schema")).fetchone()
                if row is None:
                    await connection.execute("INSERT INTO aoai_batch_schema (version) VALUES (0)")
                version = row[0] if row is not None else 0
                if version > len(migrations):
                    raise InvalidInput(
                        f"The job registry at {self.shown_url} was written by a newer version (schema {version}); "
                        "upgrade."
                    )
                for script in migrations[version:]:
                    for statement in statements(postgres_ddl(script)):
                        await connection.execute(statement.encode())  # DDL takes no parameters
                await connection.execute("UPDATE aoai_batch_schema SET version = %s", (len(migrations),))

    async def announce(self, payload: str) -> None:
        with _translated(self.shown_url):
            async with self._pool.connection() as connection:
                await connection.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, payload))

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[AsyncIterator[str]]:
        """A connection of its own LISTENs; announcements of this database's pool are left out."""
        with _translated(self.shown_url):
            connection = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        try:
            with _translated(self.shown_url):
                await connection.execute(f"LISTEN {CHANGES_CHANNEL}")
            yield self._payloads(connection)
        finally:
            await connection.close()

    async def _payloads(self, connection: psycopg.AsyncConnection[Any]) -> AsyncIterator[str]:
        with _translated(self.shown_url):
            async for notice in connection.notifies():
                if notice.pid not in self._backends:
                    yield notice.payload

    async def close(self) -> None:
        await self._pool.close()


class PostgresTransaction:
    def __init__(self, cursor: psycopg.AsyncCursor[dict[str, Any]]) -> None:
        self._cursor = cursor

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        await self._cursor.execute(_sql(sql), tuple(params))
        return self._cursor.rowcount

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._cursor.executemany(_sql(sql), [tuple(row) for row in rows])

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        await self._cursor.execute(_sql(sql), tuple(params))
        return list(await self._cursor.fetchall())

    async def lock(self, name: str) -> None:
        await self._cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))


@contextmanager
def _translated(shown_url: str) -> Iterator[None]:
    """psycopg's errors as the project's; the message shows the URL without its password."""
    try:
        yield
    except BatchToolError:
        raise
    except (psycopg.OperationalError, psycopg.errors.ConnectionTimeout, OSError) as exc:
        raise ConnectionFailed(
            f"The job registry's PostgreSQL server ({SETTING}={shown_url}) cannot be reached or refused the "
            f"connection ({_reason(exc)}); check that it runs, the URL, the user and the password.",
            endpoint_setting=SETTING,
        ) from None
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"The job registry's PostgreSQL server ({SETTING}={shown_url}) refused a request ({_reason(exc)}); "
            "check the database user's rights, or try again."
        ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
