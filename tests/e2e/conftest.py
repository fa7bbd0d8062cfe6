"""Helpers for driving real OAuth client libraries against the live server."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from lmsauth.core import clock
from tests.conftest import LiveServer

CALLBACK = "https://client.example/callback"
CSRF_LOGIN = re.compile(r'name="authenticity_token" value="([^"]+)"')
CSRF_CONSENT = re.compile(r'name="custom_csrf_token" value="([^"]+)"')


@pytest.fixture
def insecure_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live server speaks plain HTTP on loopback; both libraries refuse that by default."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def follow_server_clock(monkeypatch: pytest.MonkeyPatch, *modules: Any) -> None:
    """Make a client library's ``time.time()`` move with ``lmsauth.core.clock``, so that a
    token the server considers expired is expired for the client too."""
    shifted = SimpleNamespace(time=lambda: time.time() + clock.offset_seconds())
    for module in modules:
        monkeypatch.setattr(module, "time", shifted)


class ScriptedBrowser:
    """A person's browser as a ``requests.Session``: follows the server's redirects, fills in
    the login form and answers the consent page, and stops at the first redirect that leaves
    the server (the client's callback)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.pages: list[str] = []

    def _on_server(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.base_url).netloc

    def authorize(self, url: str, login: str, password: str, *, consent: bool = True) -> str:
        """Start at ``url`` and return the URL the server finally sends the browser to."""
        response = self.http.get(url, allow_redirects=False, timeout=10)
        for _ in range(10):
            if response.is_redirect:
                target = urljoin(response.url, response.headers["location"])
                if not self._on_server(target):
                    return target
                self.pages.append(urlsplit(target).path)
                response = self.http.get(target, allow_redirects=False, timeout=10)
                continue
            assert response.status_code == 200, (response.status_code, response.text)
            login_csrf = CSRF_LOGIN.search(response.text)
            consent_csrf = CSRF_CONSENT.search(response.text)
            if consent_csrf and urlsplit(response.url).path == "/login/oauth2/confirm":
                action = "/login/oauth2/accept" if consent else "/login/oauth2/deny"
                response = self.http.post(
                    self.base_url + action,
                    data={"custom_csrf_token": consent_csrf.group(1)},
                    allow_redirects=False,
                    timeout=10,
                )
            elif login_csrf and urlsplit(response.url).path == "/login/canvas":
                response = self.http.post(
                    self.base_url + "/login/canvas",
                    data={
                        "authenticity_token": login_csrf.group(1),
                        "pseudonym_session[unique_id]": login,
                        "pseudonym_session[password]": password,
                    },
                    allow_redirects=False,
                    timeout=10,
                )
            else:
                # The out-of-band landing page, or something unexpected: the caller decides.
                return response.url
        raise AssertionError(f"the authorization never finished: {self.pages}")


@pytest.fixture
def browser(live_server: LiveServer) -> ScriptedBrowser:
    return ScriptedBrowser(live_server.url)


def issue_token(
    live_server: LiveServer,
    browser: ScriptedBrowser,
    client_id: str,
    client_secret: str,
    login: str,
    password: str,
    **params: str,
) -> dict[str, Any]:
    """The authorization-code flow with plain HTTP requests; returns the token response."""
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, **params}
    url = requests.Request("GET", f"{live_server.url}/login/oauth2/auth", params=query).prepare().url
    assert url is not None
    callback = browser.authorize(url, login, password)
    code = parse_qs(urlsplit(callback).query).get("code")
    assert code, callback
    response = requests.post(
        f"{live_server.url}/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code[0],
            "redirect_uri": CALLBACK,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
