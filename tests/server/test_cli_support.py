"""The CLI's shared parts: the progress bar on stderr, and the URL `serve --transport http` prints."""

from __future__ import annotations

import io

import pytest

from server.cli_support import ProgressBar
from server.http import url_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_off_a_terminal_the_bar_writes_a_line_per_change() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    for done in (0, 0, 5, 10):
        await bar(done, 10, "b1")
    bar.finish()
    assert stream.getvalue().splitlines() == [
        "[----------]   0% b1",
        "[#####-----]  50% b1",
        "[##########] 100% b1",
    ]


async def test_in_a_terminal_the_bar_redraws_one_line_and_ends_it() -> None:
    stream = Terminal()
    bar = ProgressBar(stream, width=4)
    await bar(1, 4, None)
    await bar(4, 4, None)
    bar.finish()
    assert stream.getvalue() == "\r[#---]  25%\x1b[K\r[####] 100%\x1b[K\n"


async def test_without_a_total_the_bar_shows_the_message() -> None:
    stream = io.StringIO()
    await ProgressBar(stream)(0, None, "b1 validating")
    assert stream.getvalue() == "b1 validating\n"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8123/mcp"),
        ("localhost", "http://localhost:8123/mcp"),
        ("::1", "http://[::1]:8123/mcp"),
        ("[::1]", "http://[::1]:8123/mcp"),
    ],
)
def test_the_printed_url_is_one_a_client_can_use(host: str, url: str) -> None:
    assert url_for(host, 8123) == url
