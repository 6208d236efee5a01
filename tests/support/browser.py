"""A real browser for the view's tests: Debian's chromium, driven by Playwright (no browser download).

`.ci/run` installs chromium before the tests and sets `REQUIRE_BROWSER=1`: there (or wherever `CI` is set) a
missing browser fails the test. Elsewhere the test is skipped, saying what to install. Screenshots go to
`CI_ARTIFACTS` (set by `.ci/run`) when it is set, else to the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_required() -> bool:
    return bool(os.environ.get("REQUIRE_BROWSER") or os.environ.get("CI"))


def chromium_or_skip(executable: Path = CHROMIUM) -> Path:
    """Chromium's path; a missing one fails the test where a browser is required, else skips it."""
    if executable.exists():
        return executable
    reason = f"{executable} is missing: install Debian's chromium (apt-get install -y chromium) for the view's test"
    if browser_required():
        pytest.fail(reason)
    pytest.skip(reason)


def artifacts_dir(fallback: Path) -> Path:
    """Where screenshots go: `CI_ARTIFACTS` when set (CI keeps them), else `fallback`."""
    folder = Path(os.environ.get("CI_ARTIFACTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@asynccontextmanager
async def browser_page(executable: Path) -> AsyncIterator[Page]:
    """A fresh page of a headless chromium that is closed afterwards."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 940})
            yield page
        finally:
            await browser.close()
