"""Headless Chromium for the browser tests: Debian's ``chromium`` package (``./scripts/test``
installs it), driven by playwright. One launch for every browser test, and where their
screenshots go."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, Page, sync_playwright

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
T = TypeVar("T")


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


def outside_playwright(work: Callable[[], T]) -> T:
    """Playwright's sync API keeps an event loop running in this thread, and ``Directory``
    runs its own (``asyncio.run``): do that work in another thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


class PageProblems:
    """Console errors (CSP violations among them) and failed or refused sub-resources."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        self.stylesheets: list[int] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.messages.append(f"failed: {request.url}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.messages.append(message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.messages.append(f"{response.status}: {response.url}")
        if response.url.endswith(".css"):
            self.stylesheets.append(response.status)
