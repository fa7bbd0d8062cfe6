"""canvasapi, the most used Canvas client, against the live server: it tells an invalid token
(401 with ``WWW-Authenticate``) from a missing permission (401 without) by the header alone."""

from __future__ import annotations

import pytest
import requests
from canvasapi import Canvas
from canvasapi.exceptions import InvalidAccessToken, Unauthorized

from lmsauth.core import clock
from tests.conftest import Directory, LiveServer
from tests.e2e.conftest import CALLBACK, ScriptedBrowser, issue_token

# canvasapi warns about every http:// base URL; the live server is on loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")


def _token(live_server: LiveServer, directory: Directory, browser: ScriptedBrowser, **key_options) -> str:
    scopes = key_options.pop("request_scope", None)
    key = directory.key(redirect_uris=[CALLBACK], **key_options)
    user = directory.user()
    extra = {"scope": scopes} if scopes else {}
    body = issue_token(
        live_server, browser, key.client_id, key.client_secret, user.login, user.password, **extra
    )
    token: str = body["access_token"]
    return token


def test_current_user(live_server, directory, browser) -> None:
    token = _token(live_server, directory, browser)
    me = Canvas(live_server.url, token).get_current_user()
    assert me.name == "Sam Student"
    assert me.short_name == "Sam Student"
    assert me.sortable_name == "Student, Sam"
    assert isinstance(me.id, int)


def test_revoked_token_is_invalid(live_server, directory, browser) -> None:
    token = _token(live_server, directory, browser)
    canvas = Canvas(live_server.url, token)
    canvas.get_current_user()
    revoked = requests.delete(
        f"{live_server.url}/login/oauth2/token", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert revoked.status_code == 200, revoked.text
    with pytest.raises(InvalidAccessToken):
        canvas.get_current_user()


def test_expired_token_is_invalid(live_server, directory, browser) -> None:
    token = _token(live_server, directory, browser)
    canvas = Canvas(live_server.url, token)
    clock.freeze()  # 1 s short of the hour, exactly
    clock.advance(3599)
    canvas.get_current_user()
    clock.advance(2)
    with pytest.raises(InvalidAccessToken):
        canvas.get_current_user()


def test_scoped_token_reaches_its_routes(live_server, directory, browser) -> None:
    scope = "url:GET|/api/v1/users/:id"
    token = _token(live_server, directory, browser, scopes=[scope], require_scopes=True, request_scope=scope)
    assert Canvas(live_server.url, token).get_current_user().name == "Sam Student"


def test_scoped_token_without_the_scope_is_unauthorized(live_server, directory, browser) -> None:
    scope = "url:GET|/api/v1/courses"
    token = _token(live_server, directory, browser, scopes=[scope], require_scopes=True, request_scope=scope)
    with pytest.raises(Unauthorized) as raised:
        Canvas(live_server.url, token).get_current_user()
    # InvalidAccessToken is not a subclass of Unauthorized; check the exact type anyway.
    assert type(raised.value) is Unauthorized
    assert "Insufficient scopes" in str(raised.value)
