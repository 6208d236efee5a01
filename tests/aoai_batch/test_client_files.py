"""How the client makes one page of files out of whatever the service sent (a pure function)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aoai_batch.client.core import file_page
from aoai_batch.models import FileInfo


@pytest.mark.parametrize(
    ("sent", "after", "purpose", "more", "expected", "has_more"),
    [
        # a service that pages: the page is kept as it came
        (["c", "b"], None, None, True, ["c", "b"], True),
        (["a"], "b", None, False, ["a"], False),
        # a service that ignores limit, after and order (Azure 2024-10-21): cut here, oldest first is turned round
        (["a", "b", "c"], None, None, False, ["c", "b"], True),
        (["a", "b", "c"], "b", None, False, ["a"], False),
        (["a", "b", "c"], None, "batch_output", False, ["b"], False),
    ],
)
def test_a_files_page_is_cut_whatever_the_service_did(
    sent: list[str], after: str | None, purpose: str | None, more: bool, expected: list[str], has_more: bool
) -> None:
    age = {"a": 1, "b": 2, "c": 3}
    files = [
        FileInfo(
            id=name,
            purpose="batch_output" if name == "b" else "batch",
            created_at=datetime.fromtimestamp(age[name], UTC),
            backend="azure",
        )
        for name in sent
    ]
    page = file_page(files, limit=2, after=after, purpose=purpose, more=more)
    assert [info.id for info in page.files] == expected
    assert page.has_more is has_more
    assert page.last_id == expected[-1]
