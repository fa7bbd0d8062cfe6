"""authlib's requests ``OAuth2Session`` against the live server: both ways of sending the client
secret, automatic refresh, and a public client with PKCE and no secret."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import authlib.oauth2.rfc6749.wrappers
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from lmsauth.core import clock
from tests.conftest import Directory, LiveServer
from tests.e2e.conftest import CALLBACK, ScriptedBrowser, follow_server_clock

pytestmark = pytest.mark.usefixtures("insecure_transport")


class TokenRequests:
    """Records what the library sent to the token endpoint."""

    def __init__(self, session: OAuth2Session) -> None:
        self.sent: list[requests.PreparedRequest] = []
        session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, **_: Any) -> None:
        if response.request.path_url.startswith("/login/oauth2/token"):
            self.sent.append(response.request)

    def form(self, index: int) -> dict[str, list[str]]:
        body = self.sent[index].body
        text = body.decode() if isinstance(body, bytes) else str(body or "")
        return parse_qs(text)


def _log_in_and_fetch(
    live_server: LiveServer,
    browser: ScriptedBrowser,
    oauth: OAuth2Session,
    login: str,
    password: str,
    **token_options: Any,
) -> dict[str, Any]:
    url, state = oauth.create_authorization_url(
        f"{live_server.url}/login/oauth2/auth", code_verifier=token_options.get("code_verifier")
    )
    callback = browser.authorize(url, login, password)
    assert callback.startswith(CALLBACK + "?"), callback
    token: dict[str, Any] = oauth.fetch_token(
        f"{live_server.url}/login/oauth2/token",
        authorization_response=callback,
        state=state,
        **token_options,
    )
    return token


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_confidential_client(live_server, directory: Directory, browser, method: str) -> None:
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    oauth = OAuth2Session(
        key.client_id, key.client_secret, token_endpoint_auth_method=method, redirect_uri=CALLBACK
    )
    sent = TokenRequests(oauth)
    token = _log_in_and_fetch(live_server, browser, oauth, user.login, user.password)
    assert token["expires_in"] == 3600
    assert token["user"]["id"] == user.id
    if method == "client_secret_basic":
        assert sent.sent[0].headers["Authorization"].startswith("Basic ")
        assert "client_secret" not in sent.form(0)
    else:
        assert "Authorization" not in sent.sent[0].headers
        assert sent.form(0)["client_secret"] == [key.client_secret]

    me = oauth.get(f"{live_server.url}/api/v1/users/self")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user.id

    refreshed = oauth.refresh_token(f"{live_server.url}/login/oauth2/token")
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] == token["refresh_token"]
    assert oauth.get(f"{live_server.url}/api/v1/users/self").status_code == 200


def test_wrong_secret_is_invalid_client(live_server, directory: Directory, browser) -> None:
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    oauth = OAuth2Session(key.client_id, "not-the-secret-at-all", redirect_uri=CALLBACK)
    with pytest.raises(OAuthError) as raised:
        _log_in_and_fetch(live_server, browser, oauth, user.login, user.password)
    assert raised.value.error == "invalid_client"


def test_refreshes_by_itself_after_the_hour(live_server, directory: Directory, browser, monkeypatch) -> None:
    follow_server_clock(monkeypatch, authlib.oauth2.rfc6749.wrappers)
    updates: list[dict[str, Any]] = []
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    oauth = OAuth2Session(
        key.client_id,
        key.client_secret,
        redirect_uri=CALLBACK,
        token_endpoint=f"{live_server.url}/login/oauth2/token",
        update_token=lambda token, **_: updates.append(dict(token)),
    )
    first = _log_in_and_fetch(live_server, browser, oauth, user.login, user.password)
    assert oauth.get(f"{live_server.url}/api/v1/users/self").status_code == 200
    assert updates == []

    clock.advance(3601)
    me = oauth.get(f"{live_server.url}/api/v1/users/self")
    assert me.status_code == 200, me.text
    assert len(updates) == 1
    assert updates[0]["access_token"] != first["access_token"]
    old = requests.get(
        f"{live_server.url}/api/v1/users/self",
        headers={"Authorization": f"Bearer {first['access_token']}"},
        timeout=10,
    )
    assert old.status_code == 401


def test_public_client_with_pkce(live_server, directory: Directory, browser) -> None:
    key = directory.key(redirect_uris=[CALLBACK], client_type="public")
    user = directory.user()
    oauth = OAuth2Session(
        key.client_id,
        token_endpoint_auth_method="none",
        code_challenge_method="S256",
        redirect_uri=CALLBACK,
    )
    sent = TokenRequests(oauth)
    verifier = generate_token(48)
    token = _log_in_and_fetch(live_server, browser, oauth, user.login, user.password, code_verifier=verifier)
    assert "client_secret" not in sent.form(0)
    assert "Authorization" not in sent.sent[0].headers
    assert sent.form(0)["code_verifier"] == [verifier]
    assert oauth.get(f"{live_server.url}/api/v1/users/self").status_code == 200

    # Public clients' refresh tokens rotate (spec 5.5).
    refreshed = oauth.refresh_token(f"{live_server.url}/login/oauth2/token")
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert oauth.get(f"{live_server.url}/api/v1/users/self").status_code == 200
    with pytest.raises(OAuthError) as raised:
        oauth.refresh_token(f"{live_server.url}/login/oauth2/token", refresh_token=token["refresh_token"])
    assert raised.value.error == "invalid_request"


def test_public_client_needs_its_verifier(live_server, directory: Directory, browser) -> None:
    key = directory.key(redirect_uris=[CALLBACK], client_type="public")
    user = directory.user()
    oauth = OAuth2Session(
        key.client_id, token_endpoint_auth_method="none", code_challenge_method="S256", redirect_uri=CALLBACK
    )
    url, state = oauth.create_authorization_url(
        f"{live_server.url}/login/oauth2/auth", code_verifier=generate_token(48)
    )
    callback = browser.authorize(url, user.login, user.password)
    with pytest.raises(OAuthError) as raised:
        oauth.fetch_token(
            f"{live_server.url}/login/oauth2/token", authorization_response=callback, state=state
        )
    # Without a verifier the code grant is not open to public clients: a secret is needed.
    assert raised.value.error == "invalid_client"
