"""An admin in headless Chromium adds a person on the People console and suspends them;
that person then cannot sign in. Screenshots go under ``test-artifacts/people/``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browsers import ARTIFACTS, PageProblems, chromium_browser, outside_playwright
from tests.canvas.people.conftest import ADMIN_PASSWORD
from tests.conftest import Directory, LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium(live_server: LiveServer, directory: Directory) -> Iterator[Browser]:
    """Debian's Chromium, started after the test's database and server: playwright runs an
    event loop in this thread, and the backends' session fixtures need it free when they start."""
    with chromium_browser() as browser:
        yield browser


def test_admin_adds_and_suspends_a_person_who_then_cannot_sign_in(
    chromium: Browser, live_server: LiveServer, directory: Directory
) -> None:
    outside_playwright(
        lambda: directory.user(
            login="admin@example.edu", password=ADMIN_PASSWORD, name="Ada Admin", admin=True
        )
    )
    shots = ARTIFACTS / "people"
    shots.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        page.goto(f"{live_server.url}/login/canvas")
        page.get_by_label("Email").fill("admin@example.edu")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log In").click()
        page.wait_for_url(f"{live_server.url}/")
        page.get_by_role("link", name="People").first.click()
        page.get_by_role("link", name="Add a person").click()
        page.get_by_label("Full name").fill("Pat Teacher")
        page.get_by_label("Login").fill("pat@example.edu")
        page.get_by_label("Password (8 characters at least)").fill("pat-password-1")
        page.screenshot(path=str(shots / "add-person.png"))
        page.get_by_role("button", name="Add person").click()
        assert page.locator("#state").inner_text() == "active"
        page.get_by_role("button", name="Suspend").click()
        assert page.locator("#state").inner_text() == "suspended"
        page.screenshot(path=str(shots / "suspended.png"))
    finally:
        context.close()
    assert problems.messages == []

    person = chromium.new_context(java_script_enabled=False)
    page = person.new_page()
    try:
        page.goto(f"{live_server.url}/login/canvas")
        page.get_by_label("Email").fill("pat@example.edu")
        page.get_by_label("Password").fill("pat-password-1")
        page.get_by_role("button", name="Log In").click()
        assert page.url.startswith(f"{live_server.url}/login/canvas")
        assert page.locator("#login-error").is_visible()
        page.screenshot(path=str(shots / "suspended-cannot-sign-in.png"))
    finally:
        person.close()
