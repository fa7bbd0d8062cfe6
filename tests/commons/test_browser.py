"""A person in headless Chromium: sign in to Canvas, launch Commons from its tool page, accept
the terms, land on the Commons page. Runs under the server's CSP, with no JavaScript needed.

Chromium is Debian's (``/usr/bin/chromium``); playwright never downloads one. If it is
missing this test fails: it is never skipped. The screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browsers import ARTIFACTS, chromium_browser
from tests.commons.support import Lti
from tests.conftest import LiveServer

# A 1x1 PNG served for the test user's avatar, which lives on a host that does not exist.
AVATAR = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkaPhfDwAEhgGAWjR9awAAAABJRU5ErkJggg=="
)

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Function-scoped so that it starts after ``live_lti`` has written to the database
    (playwright's sync API keeps an event loop running in this thread)."""
    with chromium_browser() as browser:
        yield browser


def test_launch_terms_and_commons_page(live_server: LiveServer, live_lti: Lti, chromium: Browser) -> None:
    lti = live_lti
    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.route(
        "https://avatars.example/**",
        lambda route: route.fulfill(status=200, content_type="image/png", body=AVATAR),
    )
    page.goto(f"{live_server.url}/login/canvas")
    page.fill("#pseudonym_session_unique_id", lti.user.login)
    page.fill("#pseudonym_session_password", lti.user.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/accounts/self/external_tools")
    page.click("text=Canvas Commons")
    assert page.url.endswith(f"/accounts/self/external_tools/{lti.tool_id}")
    page.click("#launch")
    page.wait_for_url(f"{live_server.url}/commons/terms")
    assert page.locator("h1").inner_text() == "Commons terms of service"
    page.check("#accept")
    page.click("#accept_terms")
    page.wait_for_url(f"{live_server.url}/commons/")
    assert page.locator("#welcome").inner_text() == f"Welcome to Commons, {lti.user.name}"
    assert page.locator("#account-name").inner_text() == "Test University"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "commons-after-terms.png"), full_page=True)
    assert (ARTIFACTS / "commons-after-terms.png").stat().st_size > 0
    assert problems == []
    # The session cookie is HttpOnly: page scripts cannot read it.
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["session"]["httpOnly"] is True and cookies["session"]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""
