"""File expiry: `output_expires_after` on a batch sets its output and error files' expiry; an upload's
`expires_after` is read in either form-field spelling; values outside Azure's (or OpenAI's) bounds are 400s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import openai
import pytest

from aoai_batch.emulator import Emulator, FakeClock
from tests.support.batch_files import write_batch_file
from tests.support.clients import Q, azure_client, upload, v1_client
from tests.support.clock import DONE

FOURTEEN_DAYS = 1_209_600
THIRTY_DAYS = 2_592_000
COMPLETED = 1_000  # clock seconds by which a 3-request batch has completed (300 + 3 x 60 + 300)


@pytest.mark.parametrize(("flavor", "seconds"), [("azure", FOURTEEN_DAYS), ("openai", 3_600)])
async def test_output_expires_after_sets_the_output_and_error_files_expiry(
    emulator: Emulator, fake_clock: FakeClock, tmp_path: Path, flavor: str, seconds: int
) -> None:
    transport = emulator.transport()
    client = (
        azure_client("http://emu", emulator.key, transport)
        if flavor == "azure"
        else v1_client("http://emu/v1", emulator.key, transport)
    )
    expires = {"anchor": "created_at", "seconds": seconds}
    with anyio.fail_after(20):
        async with client:
            file_id = await upload(client, write_batch_file(tmp_path / "in.jsonl"))
            batch = await client.batches.create(
                input_file_id=file_id,
                # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
                endpoint="/chat/completions",  # type: ignore[arg-type]
                completion_window="24h",
                output_expires_after=expires,  # type: ignore[arg-type]
            )
            fake_clock.advance(COMPLETED)  # not further: an hour's expiry would have passed
            batch = await client.batches.retrieve(batch.id)
            assert batch.output_file_id
            assert batch.error_file_id
            output = await client.files.retrieve(batch.output_file_id)
            error = await client.files.retrieve(batch.error_file_id)
            fake_clock.advance(seconds)
            with pytest.raises(openai.NotFoundError):
                await client.files.retrieve(batch.output_file_id)
    assert output.expires_at == output.created_at + seconds
    assert error.expires_at == error.created_at + seconds


async def test_output_files_do_not_expire_without_output_expires_after(
    emulator: Emulator, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with anyio.fail_after(20):
        async with azure_client("http://emu", emulator.key, emulator.transport()) as client:
            file_id = await upload(client, write_batch_file(tmp_path / "in.jsonl"))
            batch = await client.batches.create(
                input_file_id=file_id,
                # Azure's path: openai's Literal for `endpoint` lists only OpenAI's /v1/... paths
                endpoint="/chat/completions",  # type: ignore[arg-type]
                completion_window="24h",
            )
            fake_clock.advance(DONE)
            batch = await client.batches.retrieve(batch.id)
            assert batch.output_file_id
            output = await client.files.retrieve(batch.output_file_id)
    assert output.expires_at is None


async def uploaded_file(http: httpx2.AsyncClient, prefix: str = "/openai", **fields: str) -> httpx2.Response:
    form: dict[str, Any] = {"data": {"purpose": "batch", **fields}}
    body = b'{"custom_id": "a", "method": "POST", "url": "/chat/completions", "body": {"model": "gpt-4o-mini"}}\n'
    form["files"] = {"file": ("in.jsonl", body, "application/jsonl")}
    return await http.post(f"{prefix}/files{Q if prefix == '/openai' else ''}", **form)


BAD_OUTPUT_EXPIRY: list[tuple[str, object]] = [
    ("/openai", {"anchor": "created_at", "seconds": 3_600}),  # below Azure's 14 days
    ("/openai", {"anchor": "created_at", "seconds": THIRTY_DAYS + 1}),
    ("/openai", {"anchor": "completed_at", "seconds": FOURTEEN_DAYS}),
    ("/openai", {"anchor": "created_at", "seconds": str(FOURTEEN_DAYS)}),
    ("/openai", {"anchor": "created_at", "seconds": True}),
    ("/openai", {"anchor": "created_at"}),
    ("/openai", {"seconds": FOURTEEN_DAYS}),
    ("/openai", FOURTEEN_DAYS),
    ("/openai/v1", {"anchor": "created_at", "seconds": 3_600}),
    ("/v1", {"anchor": "created_at", "seconds": 3_599}),  # below OpenAI's hour
    ("/v1", {"anchor": "created_at", "seconds": THIRTY_DAYS + 1}),
]


@pytest.mark.parametrize(("prefix", "value"), BAD_OUTPUT_EXPIRY)
async def test_bad_output_expires_after_is_a_400(http: httpx2.AsyncClient, prefix: str, value: object) -> None:
    file_id = (await uploaded_file(http)).json()["id"]
    body = {
        "input_file_id": file_id,
        "endpoint": "/chat/completions",
        "completion_window": "24h",
        "output_expires_after": value,
    }
    response = await http.post(f"{prefix}/batches{Q if prefix == '/openai' else ''}", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error.get("target") or error.get("param")) == "output_expires_after"


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_after[anchor]": "created_at", "expires_after[seconds]": str(FOURTEEN_DAYS)},
        {"expires_after.anchor": "created_at", "expires_after.seconds": str(FOURTEEN_DAYS)},
        {"expires_after": f'{{"anchor": "created_at", "seconds": {FOURTEEN_DAYS}}}'},
        {"expires_after[anchor]": "created_at", "expires_after.anchor": "created_at"}
        | {"expires_after.seconds": str(FOURTEEN_DAYS)},
    ],
)
async def test_upload_expiry_is_read_in_either_form_field_spelling(
    http: httpx2.AsyncClient, fields: dict[str, str]
) -> None:
    response = await uploaded_file(http, **fields)
    assert response.status_code == 201, response.text
    assert response.json()["expires_at"] == response.json()["created_at"] + FOURTEEN_DAYS


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_after.anchor": "created_at", "expires_after.seconds": "3600"},
        {"expires_after.anchor": "created_at", "expires_after.seconds": str(THIRTY_DAYS + 1)},
        {"expires_after.anchor": "now", "expires_after.seconds": str(FOURTEEN_DAYS)},
        {"expires_after.anchor": "created_at", "expires_after.seconds": "-1"},
        {"expires_after.anchor": "created_at"},
        {"expires_after.seconds": str(FOURTEEN_DAYS)},
        {"expires_after[seconds]": str(FOURTEEN_DAYS), "expires_after.seconds": str(THIRTY_DAYS)}
        | {"expires_after[anchor]": "created_at"},
        {"expires_after": "14 days"},
        {"expires_after": f'{{"anchor": "created_at", "seconds": "{FOURTEEN_DAYS}"}}'},
        {"expires_after": f'{{"anchor": "created_at", "seconds": {FOURTEEN_DAYS}}}'}
        | {"expires_after.anchor": "created_at"},
    ],
)
async def test_bad_upload_expiry_is_a_400_in_either_spelling(http: httpx2.AsyncClient, fields: dict[str, str]) -> None:
    response = await uploaded_file(http, **fields)
    assert response.status_code == 400
    assert response.json()["error"] == response.json()["error"] | {"code": "invalidPayload", "target": "expires_after"}


async def test_openai_paths_accept_an_hour_of_upload_expiry(http: httpx2.AsyncClient) -> None:
    fields = {"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
    response = await uploaded_file(http, "/v1", **fields)
    assert response.status_code == 200
    assert response.json()["expires_at"] == response.json()["created_at"] + 3_600
