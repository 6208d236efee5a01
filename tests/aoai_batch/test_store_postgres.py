"""The registry on PostgreSQL only: replicas migrating together, the change feed (LISTEN/NOTIFY), concurrent
saves of one batch, and the errors a user sees for a server that cannot be used."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import psycopg
import pytest
from pydantic import ValidationError

from aoai_batch.errors import ConnectionFailed, InvalidInput, ServiceUnavailable
from aoai_batch.settings import Settings, config_view
from aoai_batch.store import SCHEMA_VERSION, Store
from tests.support.postgres import PostgresServer
from tests.support.stores import make_batch

REPLICAS = 6
BATCHES = 40


async def test_replicas_opening_a_new_database_together_migrate_it_once(postgres_url: str) -> None:
    """The tables are created without IF NOT EXISTS: a second migrator would fail."""
    stores: list[Store] = []

    async def open_one() -> None:
        stores.append(await Store.open_url(postgres_url))

    async with anyio.create_task_group() as group:
        for _ in range(REPLICAS):
            group.start_soon(open_one)
    for store in stores:
        await store.close()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM aoai_batch_schema").fetchall() == [(SCHEMA_VERSION,)]
    assert len(stores) == REPLICAS


async def test_a_database_of_a_newer_version_is_refused(postgres_url: str) -> None:
    await (await Store.open_url(postgres_url)).close()
    with psycopg.connect(postgres_url) as db:
        db.execute("UPDATE aoai_batch_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(InvalidInput, match="newer version"):
        await Store.open_url(postgres_url)


async def test_an_announcement_reaches_the_other_stores_and_not_its_own(postgres_url: str) -> None:
    async with await Store.open_url(postgres_url) as first, await Store.open_url(postgres_url) as second:
        assert first.engine == "postgresql"
        async with first.changes() as first_feed, second.changes() as second_feed:
            await first.announce("batch", "batch_1")
            await second.announce("run", "run_1")
            with anyio.fail_after(30):
                assert await anext(aiter(second_feed)) == ("batch", "batch_1")
                # first's own announcement came before second's: had it been delivered, it would be first here
                assert await anext(aiter(first_feed)) == ("run", "run_1")


async def test_a_saved_batch_is_announced_when_it_is_new_or_changed_and_not_when_it_is_the_same(
    postgres_url: str,
) -> None:
    async with (
        await Store.open_url(postgres_url) as saver,
        await Store.open_url(postgres_url) as replica,
        replica.changes() as feed,
    ):
        await saver.save_batch(make_batch("batch_1"))
        await saver.save_batch(make_batch("batch_1"))  # the same snapshot: nothing to tell
        await saver.save_batch(make_batch("batch_1", "in_progress"))
        await saver.save_batch(make_batch("batch_1", "validating"))  # older than the stored one: kept out
        await saver.announce("run", "run_1")  # the end of what was sent
        heard = []
        with anyio.fail_after(30):
            async for change in feed:
                heard.append(change)
                if change == ("run", "run_1"):
                    break
    assert heard == [("batch", "batch_1"), ("batch", "batch_1"), ("run", "run_1")]


async def test_sqlite_announces_nothing_and_its_feed_never_yields(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    async with await Store.open(tmp_path / "state.sqlite3") as store, store.changes() as feed:
        assert store.engine == "sqlite"
        await store.announce("batch", "batch_1")
        with anyio.move_on_after(0.2):
            async for change in feed:
                seen.append(change)
    assert seen == []


async def test_replicas_saving_one_batch_at_once_never_go_back(postgres_url: str) -> None:
    """Each save compares with the stored snapshot under the batch's lock: of a finished and an older view
    saved at once by two replicas, the finished one stays, whichever commits last."""
    ids = [f"batch_{n}" for n in range(BATCHES)]
    async with await Store.open_url(postgres_url) as first, await Store.open_url(postgres_url) as second:
        for _ in range(3):
            async with anyio.create_task_group() as group:
                for batch_id in ids:
                    group.start_soon(first.save_batch, make_batch(batch_id, "completed"))
                    group.start_soon(second.save_batch, make_batch(batch_id, "validating"))
        statuses = {record.batch.id: record.batch.status for record in await first.list_batches()}
    assert statuses == dict.fromkeys(ids, "completed")


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://aoai:s3cret-word@127.0.0.1:{port}/registry"
    with pytest.raises(ConnectionFailed) as caught:
        await Store.open_url(url)
    message = str(caught.value)
    assert "AOAI_BATCH_DATABASE_URL" in message
    assert "aoai:***@127.0.0.1" in message
    assert "s3cret-word" not in message
    assert caught.value.endpoint_setting == "AOAI_BATCH_DATABASE_URL"
    assert caught.value.__cause__ is None  # psycopg's error (and its traceback) stays behind


async def test_a_database_that_does_not_exist_is_a_clear_error(postgres_server: PostgresServer) -> None:
    with pytest.raises(ConnectionFailed, match='database "no_such_registry" does not exist'):
        await Store.open_url(postgres_server.url("no_such_registry"))


async def test_the_settings_choose_the_engine(postgres_url: str, tmp_path: Path) -> None:
    async with await Store.open_for(Settings(home=tmp_path, database_url=postgres_url)) as store:
        assert store.engine == "postgresql"
    async with await Store.open_for(Settings(home=tmp_path)) as store:
        assert store.engine == "sqlite"
    assert (tmp_path / "state.sqlite3").exists()


@pytest.mark.parametrize("url", ["mysql://a:b@host/db", "sqlite:///tmp/x.db", "just-a-host"])
def test_a_database_url_that_is_not_postgresql_is_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("AOAI_BATCH_DATABASE_URL", url)
    with pytest.raises(ValidationError) as caught:
        Settings()
    error = caught.value.errors()[0]
    assert error["loc"] == ("AOAI_BATCH_DATABASE_URL",)
    assert "must be a PostgreSQL URL" in error["msg"]


def test_the_config_view_shows_the_database_url_without_its_password(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://aoai:s3cret@db.example.com:5432/reg")
    view = config_view(settings)
    assert view.state_path == "postgresql://aoai:***@db.example.com:5432/reg"
    assert "s3cret" not in view.model_dump_json()
    assert config_view(Settings(home=tmp_path)).state_path == str(tmp_path / "state.sqlite3")


async def test_a_user_who_may_not_create_the_tables_is_told_so(postgres_server: PostgresServer) -> None:
    """PostgreSQL 15 lets only the database's owner create tables in `public`: a user without that right."""
    url = postgres_server.new_database()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE ROLE visitor LOGIN PASSWORD 'visitor-secret'")
    with pytest.raises(ServiceUnavailable) as caught:
        await Store.open_url(url.replace("postgres@", "visitor:visitor-secret@"))
    message = str(caught.value)
    assert "permission denied for schema public" in message
    assert "AOAI_BATCH_DATABASE_URL=postgresql://visitor:***@" in message
    assert "visitor-secret" not in message
