"""Normalisation of Azure's wire variants, on recorded raw dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aoai_batch.client.normalize import batch_errors, batch_status, timestamp, to_batch, to_file
from aoai_batch.errors import InvalidRequest
from aoai_batch.models import BatchError

# From the Azure 2024-10-21 examples (get_batches.json).
AZURE_STANDARD: dict[str, Any] = {
    "object": "batch",
    "id": "batch_72a2792ef7d24ba7b82c7fe4a37e379f",
    "endpoint": "/chat/completions",
    "errors": None,
    "input_file_id": "file-b4fa7277f3eb4722ac18b90f46102c3f",
    "completion_window": "24h",
    "status": "completed",
    "output_file_id": "file-f2ddaf43-b48b-46dd-b264-90da10c7a85b",
    "error_file_id": "file-c3b563b0-ebc7-47da-93e3-a2fa694aef0c",
    "created_at": 1646126127,
    "in_progress_at": 1646126130,
    "expires_at": 1646126170,
    "finalizing_at": 1646126134,
    "completed_at": 1646126136,
    "failed_at": None,
    "expired_at": None,
    "cancelling_at": None,
    "cancelled_at": None,
    "request_counts": {"total": 500, "completed": 400, "failed": 100},
    "metadata": {"batch_description": "Evaluation job"},
}

# The variant some Azure regions send: capitalised status, ISO times, empty ids, errors as a list.
AZURE_LEGACY: dict[str, Any] = {
    "id": "batch_legacy",
    "object": "batch",
    "endpoint": None,
    "errors": [{"code": "invalid_json_line", "message": "bad line", "line": "3"}],
    "input_file_id": "file-1",
    "completion_window": "24h",
    "status": "Failed",
    "output_file_id": "",
    "error_file_id": "",
    "created_at": "2024-07-19T10:00:00.1234567Z",
    "failed_at": "2024-07-19T10:05:00+02:00",
    "expires_at": None,
    "request_counts": None,
    "metadata": None,
}


def test_a_standard_azure_batch_passes_through() -> None:
    batch = to_batch(AZURE_STANDARD, "azure")
    assert batch.status == "completed"
    assert batch.terminal is True
    assert batch.endpoint == "/chat/completions"
    assert batch.created_at == datetime.fromtimestamp(1646126127, tz=UTC)
    assert batch.request_counts.failed == 100
    assert batch.progress_percent == 100.0
    assert batch.errors == []
    assert batch.metadata == {"batch_description": "Evaluation job"}
    assert batch.backend == "azure"


def test_a_legacy_azure_batch_is_normalised() -> None:
    batch = to_batch(AZURE_LEGACY, "azure")
    assert batch.status == "failed"
    assert batch.terminal is True
    assert batch.endpoint is None
    assert batch.output_file_id is None
    assert batch.error_file_id is None
    assert batch.created_at == datetime(2024, 7, 19, 10, 0, 0, 123456, tzinfo=UTC)
    assert batch.failed_at == datetime(2024, 7, 19, 8, 5, tzinfo=UTC)
    assert batch.errors == [BatchError(code="invalid_json_line", message="bad line", line=3)]
    assert batch.request_counts.total == 0
    assert batch.progress_percent is None
    assert batch.metadata == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("validating", "validating"),
        ("Validating", "validating"),
        ("InProgress", "in_progress"),
        ("in_progress", "in_progress"),
        ("In Progress", "in_progress"),
        ("FINALIZING", "finalizing"),
        ("Cancelling", "cancelling"),
        ("Canceled", "cancelled"),
        ("Expired", "expired"),
    ],
)
def test_status_variants_become_lower_snake_case(raw: str, expected: str) -> None:
    assert batch_status(raw) == expected


@pytest.mark.parametrize("raw", ["", None, "Paused", 3])
def test_an_unknown_status_is_an_invalid_request(raw: object) -> None:
    with pytest.raises(InvalidRequest):
        batch_status(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1646126127, datetime(2022, 3, 1, 9, 15, 27, tzinfo=UTC)),
        (1646126127.5, datetime(2022, 3, 1, 9, 15, 27, 500000, tzinfo=UTC)),
        (1646126127000, datetime(2022, 3, 1, 9, 15, 27, tzinfo=UTC)),
        ("1646126127", datetime(2022, 3, 1, 9, 15, 27, tzinfo=UTC)),
        ("2022-03-01T09:15:27Z", datetime(2022, 3, 1, 9, 15, 27, tzinfo=UTC)),
        ("2022-03-01T09:15:27", datetime(2022, 3, 1, 9, 15, 27, tzinfo=UTC)),
        ("2022-03-01T10:15:27+01:00", datetime(2022, 3, 1, 9, 15, 27, tzinfo=UTC)),
        (None, None),
        ("", None),
        (0, None),
        ("not a date", None),
        (True, None),
        ([], None),
    ],
)
def test_timestamps_accept_epoch_and_iso_forms(raw: object, expected: datetime | None) -> None:
    assert timestamp(raw) == expected


@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        (None, []),
        ({"object": "list", "data": [{"code": "a", "message": "x", "line": 2}]}, ["a"]),
        ({"object": "list", "data": None}, []),
        ([{"code": "a"}, {"code": "b"}], ["a", "b"]),
        ({"code": "single", "message": "one error object"}, ["single"]),
        (["not an object", {"code": "c"}], ["c"]),
        ("garbage", []),
    ],
)
def test_errors_as_object_or_list(raw: object, codes: list[str]) -> None:
    assert [error.code for error in batch_errors(raw)] == codes


def test_progress_counts_completed_and_failed_requests() -> None:
    raw = {**AZURE_STANDARD, "status": "in_progress", "request_counts": {"total": 8, "completed": 3, "failed": 1}}
    batch = to_batch(raw, "openai")
    assert batch.progress_percent == 50.0
    assert batch.terminal is False


def test_metadata_values_become_strings() -> None:
    batch = to_batch({**AZURE_STANDARD, "metadata": {"n": 3, "none": None}}, "azure")
    assert batch.metadata == {"n": "3", "none": ""}


@pytest.mark.parametrize(
    ("raw", "status", "size"),
    [
        ({"id": "file-1", "status": "processed", "bytes": 10, "created_at": 1646126127}, "processed", 10),
        ({"id": "file-1", "status": "Pending", "bytes": None, "created_at": "2024-07-19T10:00:00Z"}, "pending", None),
        ({"id": "file-1"}, None, None),
    ],
)
def test_file_objects_are_normalised(raw: dict[str, Any], status: str | None, size: int | None) -> None:
    info = to_file(raw, "azure")
    assert info.id == "file-1"
    assert info.status == status
    assert info.bytes == size
