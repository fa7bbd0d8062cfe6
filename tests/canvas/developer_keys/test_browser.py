"""An admin in headless Chromium (JavaScript off: the console works without it) creates a
developer key on the console, reads its secret, turns it on; then a person authorizes it and
the authorization-code flow succeeds. Screenshots of each page go to
``test-artifacts/developer_keys/``."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.browsers import ARTIFACTS, PageProblems, outside_playwright
from tests.canvas.developer_keys.conftest import ADMIN
from tests.conftest import Directory, LiveServer
from tests.e2e.test_browser import OOB

SHOTS = ARTIFACTS / "developer_keys"
pytestmark = pytest.mark.browser


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, base: str, login: str, password: str) -> None:
    page.get_by_label("Email").fill(login)
    page.get_by_label("Password").fill(password)
    # Wait for the page the sign-in leads to, so that the next goto cannot abort it (an aborted
    # navigation is a failed request to PageProblems).
    with page.expect_navigation():
        page.get_by_role("button", name="Log In").click()
    page.wait_for_load_state()


# The template database is made with ``asyncio.run``, which cannot run once playwright's loop
# does: asking for it here makes it (a session fixture) before the module's browser.
@pytest.mark.usefixtures("template_db")
def test_an_admin_makes_a_key_on_the_console_and_a_flow_succeeds_with_it(
    chromium: Browser, live_server: LiveServer, directory: Directory
) -> None:
    base = live_server.url
    outside_playwright(lambda: directory.user(admin=True, **ADMIN))
    student = outside_playwright(
        lambda: directory.user(login="pat@example.edu", password="pat-password-1", name="Pat Learner")
    )
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        page.goto(f"{base}/accounts/self/developer_keys")
        assert page.url == f"{base}/login/canvas"
        log_in(page, base, ADMIN["login"], ADMIN["password"])
        page.goto(f"{base}/accounts/self/developer_keys")
        assert page.get_by_role("heading", name="Developer Keys").is_visible()
        shot(page, "1-empty-list")

        page.get_by_role("link", name="+ Developer Key").click()
        page.get_by_label("Key name").fill("Gradebook Sync")
        page.get_by_label("Redirect URIs (one per line)").fill(f"{OOB}\nhttps://app.example.com/callback")
        page.get_by_label("Scopes (one per line)").fill("url:GET|/api/v1/users/:id")
        shot(page, "2-new-key-form")
        page.get_by_role("button", name="Save").click()

        assert page.locator("#key-state").inner_text().startswith("off")
        client_id = page.locator("#client-id").inner_text()
        page.get_by_text("Show key").click()
        secret = page.locator("#client-secret").inner_text()
        assert len(secret) == 64
        shot(page, "3-key-page-secret-shown")

        page.locator("#binding-form").get_by_role("button", name="Turn on").click()
        row = page.locator(f"#key-{client_id}")
        assert "on" in row.locator("td").nth(1).inner_text()
        shot(page, "4-list-key-on")
    finally:
        context.close()

    person = chromium.new_context(java_script_enabled=False)
    page = person.new_page()
    person_problems = PageProblems(page)
    try:
        query = urlencode(
            {
                "client_id": client_id,
                "response_type": "code",
                "redirect_uri": OOB,
                "scope": "url:GET|/api/v1/users/:id",
            }
        )
        page.goto(f"{base}/login/oauth2/auth?{query}")
        log_in(page, base, student.login, student.password)
        page.wait_for_url(f"{base}/login/oauth2/confirm")
        assert "Gradebook Sync is requesting access" in page.locator("#app-name").inner_text()
        shot(page, "5-consent")
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{base}/login/oauth2/auth?code=*")
        code = page.locator("#oob-code").inner_text().strip()
        shot(page, "6-code")
    finally:
        person.close()

    assert problems.messages == [] and person_problems.messages == []
    token = httpx.post(
        f"{base}/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": secret,
            "code": code,
            "redirect_uri": OOB,
        },
    )
    assert token.status_code == 200, token.text
    me = httpx.get(
        f"{base}/api/v1/users/self", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.json()["name"] == "Pat Learner"
