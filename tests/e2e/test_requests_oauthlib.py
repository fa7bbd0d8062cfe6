"""requests-oauthlib's ``OAuth2Session`` against the live server, unchanged: the library a
Python Canvas integration most often uses for the authorization-code flow."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import oauthlib.oauth2.rfc6749.clients.base
import oauthlib.oauth2.rfc6749.parameters
import pytest
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError
from requests_oauthlib import OAuth2Session

from lmsauth.core import clock
from tests.conftest import Directory, LiveServer
from tests.e2e.conftest import CALLBACK, ScriptedBrowser, follow_server_clock

pytestmark = pytest.mark.usefixtures("insecure_transport")


def _authorized(
    live_server: LiveServer, directory: Directory, browser: ScriptedBrowser, **session_options: object
) -> tuple[OAuth2Session, dict[str, object], str, str]:
    """The whole flow up to the token: (session, token, client_id, client_secret)."""
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    oauth = OAuth2Session(key.client_id, redirect_uri=CALLBACK, **session_options)
    url, state = oauth.authorization_url(f"{live_server.url}/login/oauth2/auth")
    callback = browser.authorize(url, user.login, user.password)
    assert callback.startswith(CALLBACK + "?"), callback
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    assert browser.pages == ["/login/canvas", "/login/oauth2/confirm"]
    token = oauth.fetch_token(
        f"{live_server.url}/login/oauth2/token",
        authorization_response=callback,
        client_secret=key.client_secret,
    )
    return oauth, token, key.client_id, key.client_secret


def test_code_flow_api_call_and_refresh(live_server, directory, browser) -> None:
    oauth, token, client_id, client_secret = _authorized(live_server, directory, browser)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert len(token["refresh_token"]) == 64
    me = oauth.get(f"{live_server.url}/api/v1/users/self")
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "Sam Student"

    first_access = token["access_token"]
    refreshed = oauth.refresh_token(
        f"{live_server.url}/login/oauth2/token",
        auth=(client_id, client_secret),
    )
    assert refreshed["access_token"] != first_access
    # Confidential clients keep their refresh token; the library carries the old one over.
    assert refreshed["refresh_token"] == token["refresh_token"]
    assert oauth.get(f"{live_server.url}/api/v1/users/self").status_code == 200
    stale = oauth.get(
        f"{live_server.url}/api/v1/users/self",
        headers={"Authorization": f"Bearer {first_access}"},
        withhold_token=True,
    )
    assert stale.status_code == 401


def test_auto_refresh_after_the_hour(live_server, directory, browser, monkeypatch) -> None:
    follow_server_clock(monkeypatch, oauthlib.oauth2.rfc6749.clients.base, oauthlib.oauth2.rfc6749.parameters)
    saved: list[dict[str, object]] = []
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    oauth = OAuth2Session(
        key.client_id,
        redirect_uri=CALLBACK,
        auto_refresh_url=f"{live_server.url}/login/oauth2/token",
        auto_refresh_kwargs={"client_id": key.client_id, "client_secret": key.client_secret},
        token_updater=saved.append,
    )
    url, _ = oauth.authorization_url(f"{live_server.url}/login/oauth2/auth")
    callback = browser.authorize(url, user.login, user.password)
    first = oauth.fetch_token(
        f"{live_server.url}/login/oauth2/token",
        authorization_response=callback,
        client_secret=key.client_secret,
    )
    first_access = first["access_token"]
    assert oauth.get(f"{live_server.url}/api/v1/users/self").status_code == 200
    assert saved == []

    clock.advance(3601)
    me = oauth.get(f"{live_server.url}/api/v1/users/self")
    assert me.status_code == 200, me.text
    assert len(saved) == 1
    assert saved[0]["access_token"] != first_access
    assert oauth.token["access_token"] == saved[0]["access_token"]
    # The server, not just the client, treats the first token as expired.
    expired = oauth.get(
        f"{live_server.url}/api/v1/users/self",
        headers={"Authorization": f"Bearer {first_access}"},
        withhold_token=True,
    )
    assert expired.status_code == 401


def test_pkce_s256(live_server, directory, browser) -> None:
    oauth, token, client_id, client_secret = _authorized(live_server, directory, browser, pkce="S256")
    assert oauth._code_verifier  # the library did send a verifier
    assert oauth.get(f"{live_server.url}/api/v1/users/self").status_code == 200
    refreshed = oauth.refresh_token(f"{live_server.url}/login/oauth2/token", auth=(client_id, client_secret))
    assert refreshed["access_token"] != token["access_token"]


def test_pkce_code_without_the_verifier_is_refused(live_server, directory, browser) -> None:
    """A code bound to a challenge cannot be redeemed by a second session lacking its verifier."""
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    oauth = OAuth2Session(key.client_id, redirect_uri=CALLBACK, pkce="S256")
    url, _ = oauth.authorization_url(f"{live_server.url}/login/oauth2/auth")
    assert "code_challenge_method=S256" in url
    callback = browser.authorize(url, user.login, user.password)
    thief = OAuth2Session(key.client_id, redirect_uri=CALLBACK)
    with pytest.raises(InvalidGrantError, match="invalid code_verifier"):
        thief.fetch_token(
            f"{live_server.url}/login/oauth2/token",
            authorization_response=callback,
            client_secret=key.client_secret,
        )
