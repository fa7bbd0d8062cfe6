"""Headless Chromium for the browser tests: Debian's ``chromium`` package (``./scripts/test``
installs it), driven by playwright. One launch for every browser test, and where their
screenshots go."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@contextlib.contextmanager
def chromium_browser() -> Iterator[Browser]:
    """A headless Chromium, closed on the way out. Playwright's sync API keeps an event loop
    running in this thread while it is open."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
