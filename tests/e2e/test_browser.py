"""A person in headless Chromium: the out-of-band flow through the real pages, with and
without JavaScript, under the server's Content-Security-Policy.

Chromium is Debian's (``/usr/bin/chromium``); playwright never downloads a browser. If it is
missing, these tests fail: they are never skipped.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browsers import ARTIFACTS, PageProblems, outside_playwright
from tests.conftest import Directory, LiveServer

OOB = "urn:ietf:wg:oauth:2.0:oob"

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_out_of_band_flow(
    chromium: Browser, live_server: LiveServer, directory: Directory, javascript: bool
) -> None:
    key = outside_playwright(
        lambda: directory.key(redirect_uris=["https://app.example.com/callback"], name="Gradebook Sync")
    )
    user = outside_playwright(
        lambda: directory.user(login="pat@example.edu", password="pat-password-1", name="Pat Learner")
    )
    context = chromium.new_context(java_script_enabled=javascript)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        query = urlencode(
            {"client_id": key.client_id, "response_type": "code", "redirect_uri": OOB, "state": "s-1"}
        )
        page.goto(f"{live_server.url}/login/oauth2/auth?{query}")
        assert page.url.startswith(f"{live_server.url}/login/canvas"), page.url
        page.get_by_label("Email").fill(user.login)
        page.get_by_label("Password").fill(user.password)
        page.get_by_role("button", name="Log In").click()

        page.wait_for_url(f"{live_server.url}/login/oauth2/confirm")
        assert "Gradebook Sync is requesting access" in page.locator("#app-name").inner_text()
        assert page.locator("#user-name").inner_text() == "Pat Learner"
        page.get_by_role("button", name="Authorize").click()

        page.wait_for_url(f"{live_server.url}/login/oauth2/auth?code=*")
        code = page.locator("#oob-code").inner_text().strip()
        assert len(code) == 128
        assert "state=s-1" in page.url
        assert "finished the login workflow" in page.content()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"oob-code-{'js' if javascript else 'no-js'}.png"))
    finally:
        context.close()

    assert problems.messages == []
    # The stylesheet is on every page, and the CSP ("style-src 'self'") let it load.
    assert problems.stylesheets and set(problems.stylesheets) <= {200, 304}

    token = httpx.post(
        f"{live_server.url}/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": OOB,
        },
    )
    assert token.status_code == 200, token.text
    me = httpx.get(
        f"{live_server.url}/api/v1/users/self",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert me.json()["name"] == "Pat Learner"


def test_wrong_password_shows_the_error(
    chromium: Browser, live_server: LiveServer, directory: Directory
) -> None:
    user = outside_playwright(directory.user)
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/canvas")
        page.get_by_label("Email").fill(user.login)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Log In").click()
        assert page.get_by_role("alert").inner_text().startswith("Please verify your username")
        # The login is kept; the password is not.
        assert page.get_by_label("Email").input_value() == user.login
        assert page.get_by_label("Password").input_value() == ""
    finally:
        context.close()


def test_native_app_redirect_is_not_blocked_by_the_csp(
    chromium: Browser, live_server: LiveServer, directory: Directory
) -> None:
    """A native app's private-use scheme (RFC 8252 section 7.1) ends the consent form's post:
    the page's CSP must not refuse that redirect."""
    callback = "com.example.gradebook://oauth/callback"
    key = outside_playwright(lambda: directory.key(redirect_uris=[callback]))
    user = outside_playwright(directory.user)
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        query = urlencode({"client_id": key.client_id, "response_type": "code", "redirect_uri": callback})
        page.goto(f"{live_server.url}/login/oauth2/auth?{query}")
        page.get_by_label("Email").fill(user.login)
        page.get_by_label("Password").fill(user.password)
        page.get_by_role("button", name="Log In").click()
        page.wait_for_url(f"{live_server.url}/login/oauth2/confirm")
        with page.expect_response(
            lambda response: response.url.endswith("/login/oauth2/accept"), timeout=5000
        ) as sent:
            page.get_by_role("button", name="Authorize").click()
        answer = sent.value
        assert answer.status == 302
        assert answer.headers["location"].startswith(callback + "?code=")
    finally:
        context.close()
    assert not [m for m in problems.messages if "Content Security Policy" in m], problems.messages
