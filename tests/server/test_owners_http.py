"""Another user's batch (SPEC §10): the real server over streamable HTTP, real signed tokens of two users
(an issuer on loopback), real `mcp.Client`s. Each user sees and changes only their own jobs; another's is
not found, exactly as one that does not exist; with AOAI_BATCH_SHARED_JOBS everyone sees everyone's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import TextResourceContents
from mcp_types import LoggingMessageNotification, ResourceUpdatedNotification
from starlette.types import ASGIApp

from aoai_batch.emulator import Emulator, FakeClock
from server.app import build_server
from server.http import MCP_PATH, http_app
from server.oauth import server_auth
from tests.support.batch_files import write_batch_file
from tests.support.clock import HOURS
from tests.support.http_server import served_for_url
from tests.support.inbox import Inbox
from tests.support.mcp import WAIT, error_details, make_settings, structured
from tests.support.oauth import AUDIENCE, Issuer, served_issuer
from tests.support.owners import client_with_token

MISSING_BATCH = "batch_00000000000000000000000000000000"
MISSING_RUN = "run_000000000000000000000000"

Users = Callable[..., AbstractAsyncContextManager[Client]]


def serve(tmp_path: Path, issuer: Issuer, emulator: Emulator, **settings: Any) -> AbstractAsyncContextManager[str]:
    values = make_settings(tmp_path, oauth_issuer=issuer.url, oauth_audience=AUDIENCE, **settings)
    sign_in = values.sign_in
    assert sign_in is not None

    def app_for(base: str) -> ASGIApp:
        auth = server_auth(sign_in, resource_url=base + MCP_PATH)
        return http_app(build_server(values, transport=emulator.transport(), auth=auth), host="127.0.0.1", token=None)

    return served_for_url(app_for)


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with served_issuer() as served:
        yield served


@pytest.fixture
async def users(
    tmp_path: Path, issuer: Issuer, emulator: Emulator, request: pytest.FixtureRequest
) -> AsyncIterator[Users]:
    """`users("alice")`: a client signed in as that user (oid `<name>-oid`), on one server."""
    async with serve(tmp_path, issuer, emulator, shared_jobs=getattr(request, "param", False)) as base:

        def as_user(name: str, inbox: Inbox | None = None) -> AbstractAsyncContextManager[Client]:
            token = issuer.token(sub=f"{name}-sub", oid=f"{name}-oid")
            return client_with_token(base + MCP_PATH, token, inbox)

        yield as_user


async def alices_batch(client: Client, tmp_path: Path) -> str:
    path = write_batch_file(tmp_path / "ws" / "alice.jsonl")
    uploaded = structured(await client.call_tool("upload_file", {"path": str(path)}))
    created = structured(await client.call_tool("create_batch", {"input_file_id": uploaded["file"]["id"]}))
    return str(created["id"])


async def refusal(client: Client, tool: str, arguments: dict[str, Any], job_id: str) -> tuple[str, str]:
    """The error kind, and the message with the id asked about taken out."""
    result = await client.call_tool(tool, arguments)
    text = "".join(getattr(part, "text", "") for part in result.content)
    return error_details(result)["kind"], text.replace(job_id, "<id>")


async def job_ids(client: Client) -> tuple[list[str], list[str]]:
    """The ids list_batches and the batch://jobs resource show."""
    listed = structured(await client.call_tool("list_batches", {}))
    read = await client.read_resource("batch://jobs")
    contents = read.contents[0]
    assert isinstance(contents, TextResourceContents)
    return [b["id"] for b in listed["batches"]], [j["id"] for j in orjson.loads(contents.text)["jobs"]]


async def test_another_users_batch_is_not_found_and_not_listed(users: Users, tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with users("alice") as alice:
            batch_id = await alices_batch(alice, tmp_path)
            alices = await job_ids(alice)
            got = structured(await alice.call_tool("get_batch", {"batch_id": batch_id}))
        async with users("bob") as bob:
            bobs = await job_ids(bob)
            refused: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {}
            for tool in ["get_batch", "cancel_batch", "fetch_results"]:
                theirs = await refusal(bob, tool, {"batch_id": batch_id}, batch_id)
                missing = await refusal(bob, tool, {"batch_id": MISSING_BATCH}, MISSING_BATCH)
                refused[tool] = (theirs, missing)
        async with users("alice") as alice:
            still = structured(await alice.call_tool("get_batch", {"batch_id": batch_id}))
    assert alices == ([batch_id], [batch_id])
    assert got["id"] == batch_id
    assert bobs == ([], [])
    for tool, (theirs, missing) in refused.items():
        assert theirs == missing, tool
        assert theirs[0] == "not_found", tool
    assert still["status"] not in {"cancelling", "cancelled"}  # bob's cancel did nothing


@pytest.mark.parametrize("users", [True], indirect=True)
async def test_with_shared_jobs_everyone_signed_in_sees_every_batch(users: Users, tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with users("alice") as alice:
            batch_id = await alices_batch(alice, tmp_path)
        async with users("bob") as bob:
            bobs = await job_ids(bob)
            got = structured(await bob.call_tool("get_batch", {"batch_id": batch_id}))
    assert bobs == ([batch_id], [batch_id])
    assert got["id"] == batch_id


async def test_another_users_run_is_not_found_and_not_listed(users: Users) -> None:
    requests = [{"custom_id": f"q-{n}", "messages": [{"role": "user", "content": f"q {n}"}]} for n in range(3)]
    with anyio.fail_after(WAIT):
        async with users("alice") as alice:
            started = structured(
                await alice.call_tool("start_run", {"deployments": ["gpt-4o-mini"], "requests": requests})
            )
            run_id = str(started["id"])
            alices = structured(await alice.call_tool("list_runs", {}))
        async with users("bob") as bob:
            theirs = await refusal(bob, "get_run", {"run_id": run_id}, run_id)
            missing = await refusal(bob, "get_run", {"run_id": MISSING_RUN}, MISSING_RUN)
            cancel = await refusal(bob, "cancel_run", {"run_id": run_id}, run_id)
            cancel_missing = await refusal(bob, "cancel_run", {"run_id": MISSING_RUN}, MISSING_RUN)
            bobs = structured(await bob.call_tool("list_runs", {}))
    assert [run["id"] for run in alices["runs"]] == [run_id]
    assert theirs == missing
    assert cancel == cancel_missing
    assert theirs[0] == "not_found"
    assert bobs["runs"] == []


async def test_job_status_log_messages_reach_only_the_users_who_may_see_the_job(
    users: Users, tmp_path: Path, fake_clock: FakeClock
) -> None:
    alices_inbox, bobs_inbox = Inbox(), Inbox()
    with anyio.fail_after(WAIT):
        async with users("alice", alices_inbox) as alice, users("bob", bobs_inbox) as bob:
            await bob.list_tools()  # bob's connection is known to the server
            batch_id = await alices_batch(alice, tmp_path)
            with pytest.warns(MCPDeprecationWarning):
                await alice.subscribe_resource(f"batch://jobs/{batch_id}")
            with pytest.warns(MCPDeprecationWarning):
                await bob.subscribe_resource("batch://jobs/none")  # a subscriber, of nothing of alice's
            fake_clock.advance(2 * HOURS)
            await alices_inbox.wait_for(ResourceUpdatedNotification, uri=f"batch://jobs/{batch_id}")
            told = await alices_inbox.wait_for(LoggingMessageNotification)
    assert told.params.data["batch_id"] == batch_id  # type: ignore[union-attr]
    assert not [m for m in bobs_inbox.messages if isinstance(m, LoggingMessageNotification)]
