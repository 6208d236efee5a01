"""file_limits reads AOAI_BATCH_MAX_REQUESTS / AOAI_BATCH_MAX_BYTES as Settings does, without pydantic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aoai_batch.errors import InvalidInput
from aoai_batch.limits import MAX_BYTES_VARIABLE, MAX_REQUESTS_VARIABLE, file_limits
from aoai_batch.settings import Settings


@pytest.mark.parametrize("variable", [MAX_REQUESTS_VARIABLE, MAX_BYTES_VARIABLE])
@pytest.mark.parametrize("text", [None, "", "  ", "5", " 5 ", "+5", "1_000", "5.0", "0", "-1", "5.5", "abc", "0x10"])
def test_limits_agree_with_settings(monkeypatch: pytest.MonkeyPatch, variable: str, text: str | None) -> None:
    for name in (MAX_REQUESTS_VARIABLE, MAX_BYTES_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    if text is not None:
        monkeypatch.setenv(variable, text)
    try:
        settings = Settings()
    except ValidationError:
        with pytest.raises(InvalidInput, match=variable):
            file_limits()
        return
    assert file_limits() == (settings.max_requests, settings.max_bytes)


def test_an_invalid_limit_is_named_without_its_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        file_limits({MAX_BYTES_VARIABLE: "secret-looking-value"})

    assert MAX_BYTES_VARIABLE in str(caught.value)
    assert "secret-looking-value" not in str(caught.value)
