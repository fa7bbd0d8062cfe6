"""A person in headless Chromium makes a manual token on Profile settings, copies it, uses it
from canvasapi, deletes it on the page, and canvasapi then raises ``InvalidAccessToken``.
Screenshots of each page go to ``test-artifacts/tokens/``."""

from __future__ import annotations

import pytest
from canvasapi import Canvas
from canvasapi.exceptions import InvalidAccessToken
from playwright.sync_api import Browser

from tests.browsers import ARTIFACTS, PageProblems, outside_playwright
from tests.conftest import TEST_DATABASE_URL, Directory, LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning"),
]
SHOTS = ARTIFACTS / "tokens"


@pytest.fixture(scope="module", autouse=True)
def _template_before_the_browser(request: pytest.FixtureRequest) -> None:
    """The SQLite template is made with ``asyncio.run``, which cannot run once Playwright's
    loop runs in this thread: make it first when this module starts a run."""
    if not TEST_DATABASE_URL:
        request.getfixturevalue("template_db")


def test_make_copy_use_and_delete_a_token(
    chromium: Browser,
    live_server: LiveServer,
    directory: Directory,
) -> None:
    user = outside_playwright(
        lambda: directory.user(login="pat@example.edu", password="pat-password-1", name="Pat Teacher")
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        page.goto(f"{live_server.url}/login/canvas")
        page.get_by_label("Email").fill(user.login)
        page.get_by_label("Password").fill(user.password)
        page.get_by_role("button", name="Log In").click()
        page.wait_for_url(f"{live_server.url}/")
        page.screenshot(path=str(SHOTS / "1-dashboard.png"))

        page.get_by_role("navigation").get_by_role("link", name="Profile settings").click()
        page.wait_for_url(f"{live_server.url}/profile/settings")
        assert page.locator("#profile-login").inner_text() == "pat@example.edu"
        page.screenshot(path=str(SHOTS / "2-profile-settings.png"))

        page.get_by_role("link", name="+ New Access Token").click()
        page.get_by_label("Purpose").fill("Grading script")
        page.screenshot(path=str(SHOTS / "3-new-token-form.png"))
        page.get_by_role("button", name="Generate Token").click()
        shown = page.locator("#new-token").inner_text().strip()
        assert len(shown) == 64
        page.get_by_role("button", name="Copy").click()
        page.get_by_text("Copied.").wait_for()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == shown
        page.screenshot(path=str(SHOTS / "4-token-shown-once.png"))

        assert Canvas(live_server.url, copied).get_current_user().name == "Pat Teacher"

        page.get_by_role("link", name="Back to Profile settings").click()
        row = page.locator("tbody tr").filter(has_text="Grading script")
        assert "No App" in row.inner_text()
        assert copied not in page.content()
        page.screenshot(path=str(SHOTS / "5-approved-integrations.png"))
        row.get_by_role("button", name="Delete").click()
        page.wait_for_url(f"{live_server.url}/profile/settings")
        assert page.locator("#no-tokens").is_visible()
        page.screenshot(path=str(SHOTS / "6-deleted.png"))
    finally:
        context.close()

    with pytest.raises(InvalidAccessToken):
        Canvas(live_server.url, copied).get_current_user()
    assert problems.messages == []


def test_without_javascript_the_token_is_shown_and_there_is_no_copy_button(
    chromium: Browser,
    live_server: LiveServer,
    directory: Directory,
) -> None:
    user = outside_playwright(lambda: directory.user(login="sam@example.edu", password="sam-password-1"))
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/canvas")
        page.get_by_label("Email").fill(user.login)
        page.get_by_label("Password").fill(user.password)
        page.get_by_role("button", name="Log In").click()
        page.goto(f"{live_server.url}/profile/tokens/new")
        page.get_by_label("Purpose").fill("No script")
        page.get_by_label("Expires").fill("2999-01-01")
        page.get_by_role("button", name="Generate Token").click()
        token = page.locator("#new-token").inner_text().strip()
        assert not page.get_by_role("button", name="Copy").is_visible()
        page.screenshot(path=str(SHOTS / "no-js-token-shown.png"))
        assert Canvas(live_server.url, token).get_current_user().name == "Sam Student"
    finally:
        context.close()
