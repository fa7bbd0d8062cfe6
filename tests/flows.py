"""Browser steps of the authorization-code flow, driven through the HTML forms as a person would."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

CSRF_LOGIN = re.compile(r'name="authenticity_token" value="([^"]+)"')
CSRF_CONSENT = re.compile(r'name="custom_csrf_token" value="([^"]+)"')


def form_token(html: str, pattern: re.Pattern[str] = CSRF_LOGIN) -> str:
    match = pattern.search(html)
    assert match, "no CSRF token in page"
    return match.group(1)


def log_in(browser: Any, login: str, password: str) -> httpx.Response:
    """Open the login form and submit it; returns the response to the POST."""
    page = browser.get("/login/canvas")
    assert page.status_code == 200, page.text
    return browser.post(
        "/login/canvas",
        data={
            "authenticity_token": form_token(page.text),
            "pseudonym_session[unique_id]": login,
            "pseudonym_session[password]": password,
        },
    )


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def authorize(
    browser: Any,
    client_id: str,
    redirect_uri: str,
    login: str,
    password: str,
    *,
    consent: bool = True,
    **params: str,
) -> httpx.Response:
    """GET /auth, log in, answer the consent page; returns the final redirect to the client."""
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri, **params}
    response = browser.get("/login/oauth2/auth", params=query)
    assert response.status_code == 302, response.text
    if response.headers["location"].startswith("/login/canvas"):
        page = browser.get(response.headers["location"])
        response = browser.post(
            "/login/canvas",
            data={
                "authenticity_token": form_token(page.text),
                "pseudonym_session[unique_id]": login,
                "pseudonym_session[password]": password,
            },
        )
        assert response.status_code == 302, response.text
    if response.headers["location"] == "/login/oauth2/confirm":
        page = browser.get("/login/oauth2/confirm")
        assert page.status_code == 200, page.text
        token = form_token(page.text, CSRF_CONSENT)
        action = "/login/oauth2/accept" if consent else "/login/oauth2/deny"
        response = browser.post(action, data={"custom_csrf_token": token})
        assert response.status_code == 302, response.text
    return response


def code_for(
    browser: Any, client_id: str, redirect_uri: str, login: str, password: str, **params: str
) -> str:
    response = authorize(browser, client_id, redirect_uri, login, password, **params)
    query = query_of(response.headers["location"])
    assert "code" in query, response.headers["location"]
    return query["code"]
