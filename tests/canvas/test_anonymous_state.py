"""Anonymous visitors write nothing (issue 15, finding 3): the login form's CSRF token and a
pending OAuth request travel in the sealed ``canvas_login`` cookie until sign-in; every kept
field is bounded; /login/oauth2/auth is limited per client address."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from lmsauth.canvas import sessions
from lmsauth.canvas.models import AuthorizationCode, BrowserSession
from lmsauth.canvas.sessions import COOKIE, LOGIN_COOKIE, LOGIN_LIFETIME, LoginState
from lmsauth.core import clock
from tests.canvas.support import AUTH, auth_params, login_state, signed_in
from tests.conftest import _RUNNING_APPS, TEST_SECRET_KEY, Directory, Key, Person
from tests.contract.conftest import conforms
from tests.flows import form_token, log_in, query_of

N = 12
VERIFIER_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B


def stored_rows(directory: Directory) -> tuple[int, int]:
    sessions_count = directory.query(select(func.count()).select_from(BrowserSession))[0][0]
    codes = directory.query(select(func.count()).select_from(AuthorizationCode))[0][0]
    return int(sessions_count), int(codes)


def fresh_browser(client: TestClient, address: str = "testclient") -> TestClient:
    return TestClient(
        client.app, base_url="http://testserver", follow_redirects=False, client=(address, 50000)
    )


def test_cookieless_page_views_and_authorizations_write_no_row(
    client: TestClient, directory: Directory, key: Key
) -> None:
    before = stored_rows(directory)
    for _ in range(N):
        browser = fresh_browser(client)
        assert browser.get("/login/canvas").status_code == 200
        assert LOGIN_COOKIE in browser.cookies and COOKIE not in browser.cookies
        browser = fresh_browser(client)
        response = browser.get(AUTH, params=auth_params(key, state="s", nonce="n", purpose="phone"))
        assert response.headers["location"] == "/login/canvas"
        assert LOGIN_COOKIE in browser.cookies and COOKIE not in browser.cookies
    assert stored_rows(directory) == before == (0, 0)


def test_the_login_goes_on_through_the_cookie(
    client: TestClient, directory: Directory, key: Key, user: Person
) -> None:
    client.get(AUTH, params=auth_params(key, state="xyz"))
    page = client.get("/login/canvas")
    assert stored_rows(directory) == (0, 0)
    response = client.post(
        "/login/canvas",
        data={
            "authenticity_token": form_token(page.text),
            "pseudonym_session[unique_id]": user.login,
            "pseudonym_session[password]": user.password,
        },
    )
    assert response.headers["location"] == "/login/oauth2/confirm"
    rows = directory.query(select(BrowserSession.user_id, BrowserSession.data))
    assert len(rows) == 1 and rows[0][0] == user.id
    assert rows[0][1]["oauth2"]["state"] == "xyz"  # the one row, with the pending request


def test_a_failed_login_keeps_the_cookie_and_writes_nothing(
    client: TestClient, directory: Directory, key: Key, user: Person
) -> None:
    client.get(AUTH, params=auth_params(key))
    token = form_token(client.get("/login/canvas").text)
    failed = client.post(
        "/login/canvas",
        data={
            "authenticity_token": token,
            "pseudonym_session[unique_id]": user.login,
            "pseudonym_session[password]": "wrong",
        },
    )
    assert failed.status_code == 400
    assert form_token(failed.text) == token
    assert stored_rows(directory) == (0, 0)
    assert log_in(client, user.login, user.password).headers["location"] == "/login/oauth2/confirm"


def _tampered(value: str) -> str:
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


@pytest.mark.parametrize("spoil", ["tampered", "expired", "other key", "garbage"])
def test_a_spoiled_login_cookie_is_refused(
    client: TestClient, directory: Directory, key: Key, user: Person, spoil: str
) -> None:
    client.get(AUTH, params=auth_params(key, state="s"))
    token = form_token(client.get("/login/canvas").text)
    value = client.cookies[LOGIN_COOKIE]
    if spoil == "expired":
        clock.advance(LOGIN_LIFETIME.total_seconds() + 1)
    else:
        if spoil == "tampered":
            value = _tampered(value)
        elif spoil == "other key":
            value = sessions.seal_login_state(LoginState(token, {"client_id": 1}), TEST_SECRET_KEY + "x")
        else:
            value = "not-a-sealed-value"
        client.cookies.jar.clear()
        client.cookies.set(LOGIN_COOKIE, value, domain="testserver.local")
    assert login_state(client) is None
    refused = client.post(
        "/login/canvas",
        data={
            "authenticity_token": token,
            "pseudonym_session[unique_id]": user.login,
            "pseudonym_session[password]": user.password,
        },
    )
    assert refused.status_code == 422
    assert stored_rows(directory) == (0, 0)
    # A fresh form with a new token, and no pending request: signing in goes home.
    page = client.get("/login/canvas")
    assert form_token(page.text) != token
    fresh = login_state(client)
    assert fresh is not None and fresh.oauth2 is None
    assert log_in(client, user.login, user.password).headers["location"] == "/"
    assert signed_in(client)


OVERSIZED: list[tuple[str, str]] = [
    ("state", "s" * 1025),
    ("purpose", "p" * 256),
    ("nonce", "n" * 256),
    ("scope", "x" * 2049),
    ("code_challenge", "c" * 129),
    ("code_challenge", "c" * 42),
    ("code_challenge", "+" * 43),
]


@pytest.mark.parametrize(("name", "value"), OVERSIZED, ids=[f"{n}-{len(v)}" for n, v in OVERSIZED])
def test_an_oversized_field_is_refused_and_writes_nothing(
    client: TestClient, directory: Directory, key: Key, user: Person, name: str, value: str
) -> None:
    sign_in_first = name == "purpose"  # a signed-in session's row is bounded alike
    if sign_in_first:
        log_in(client, user.login, user.password)
    before = stored_rows(directory)
    cookies_before = dict(client.cookies)
    params = auth_params(key, code_challenge_method="S256", **{name: value})
    response = client.get(AUTH, params=params)
    assert response.status_code == 302
    answer = query_of(response.headers["location"])
    assert response.headers["location"].startswith(key.redirect_uris[0] + "?")
    assert answer["error"] == "invalid_request"
    assert name in answer["error_description"] or "code_challenge" in answer["error_description"]
    assert "set-cookie" not in response.headers
    assert dict(client.cookies) == cookies_before
    assert stored_rows(directory) == before
    if sign_in_first:
        assert all("oauth2" not in data for (data,) in directory.query(select(BrowserSession.data)))


def test_an_oversized_field_before_the_redirect_uri_is_known_answers_json(
    client: TestClient, directory: Directory, key: Key
) -> None:
    response = client.get(
        AUTH, params={**auth_params(key, state="s" * 1025), "redirect_uri": "https://evil.example/"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert stored_rows(directory) == (0, 0)


def test_fields_at_their_bounds_are_kept(client: TestClient, key: Key) -> None:
    params = auth_params(
        key,
        state="s" * 1024,
        purpose="p" * 255,
        nonce="n" * 255,
        code_challenge=VERIFIER_CHALLENGE,
        code_challenge_method="S256",
    )
    response = client.get(AUTH, params=params)
    assert response.headers["location"] == "/login/canvas"
    state = login_state(client)
    assert state is not None and state.oauth2 is not None
    assert state.oauth2["state"] == "s" * 1024
    assert state.oauth2["code_challenge"] == VERIFIER_CHALLENGE


def test_a_request_too_large_for_a_cookie_is_refused(client: TestClient, directory: Directory) -> None:
    long_uri = "https://app.example.com/callback/" + "a" * 1500
    key = directory.key(redirect_uris=[long_uri])
    response = client.get(AUTH, params=auth_params(key, state="s" * 1024, scope="x" * 1000))
    assert query_of(response.headers["location"])["error"] == "invalid_request"
    assert "set-cookie" not in response.headers


def test_the_largest_pending_request_fits_a_browser_cookie() -> None:
    pending: dict[str, Any] = {"client_id": 2**31 - 1, "state": ""}
    pending["state"] = "\x01" * 10_000
    while not sessions.pending_fits(pending):  # non-ASCII costs most: six bytes a character
        pending["state"] = pending["state"][:-1]
    value = sessions.seal_login_state(LoginState.new(pending), TEST_SECRET_KEY)
    assert len(LOGIN_COOKIE) + 1 + len(value) <= 4096


@pytest.fixture
def limited(app_client: Callable[..., TestClient]) -> TestClient:
    built = app_client(rate_limit_authorize_requests=3, rate_limit_authorize_window_seconds=60)
    assert built.portal is not None
    _RUNNING_APPS[built.app] = built.portal  # browsers of other addresses share its event loop
    return built


def test_authorize_is_limited_per_client_address(limited: TestClient, directory: Directory) -> None:
    key = directory.key()
    one = fresh_browser(limited, "192.0.2.1")
    for _ in range(3):
        assert one.get(AUTH, params=auth_params(key)).status_code == 302
    refused = one.get(AUTH, params=auth_params(key))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["content-type"].startswith("text/html")
    assert "Too many requests" in refused.text
    conforms(refused, "GET", AUTH)
    other = fresh_browser(limited, "192.0.2.2")
    assert other.get(AUTH, params=auth_params(key)).status_code == 302


def test_the_login_cookie_lives_one_hour(client: TestClient, key: Key) -> None:
    response = client.get(AUTH, params=auth_params(key))
    header = next(v for k, v in response.headers.multi_items() if k == "set-cookie")
    assert f"max-age={int(LOGIN_LIFETIME.total_seconds())}" in header.lower()
    clock.advance(timedelta(minutes=59).total_seconds())
    assert login_state(client) is not None
