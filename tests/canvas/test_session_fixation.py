"""Signing in leaves nothing of the pre-login session usable (no session fixation).

Checked over HTTP only, whatever keeps the state of a browser that has not signed in yet (a
session row, or a signed cookie): any ``canvas_session`` value the server set before sign-in
no longer signs anyone in, no longer carries a login form, and no longer names a session row.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select
from starlette.testclient import TestClient

from lmsauth.canvas.models import BrowserSession
from lmsauth.canvas.sessions import COOKIE
from lmsauth.core import secrets
from tests.canvas.support import AUTH, auth_params, count, signed_in
from tests.conftest import Directory, Key, Person
from tests.flows import form_token


def set_cookie(response: httpx.Response) -> str | None:
    value = response.cookies.get(COOKIE)
    return value if value else None


def browser(client: TestClient, cookie: str) -> TestClient:
    return TestClient(
        client.app, base_url="http://testserver", follow_redirects=False, cookies={COOKIE: cookie}
    )


def test_no_pre_login_cookie_value_is_accepted_after_sign_in(
    client: TestClient, directory: Directory, key: Key, user: Person
) -> None:
    before: list[str] = []
    started = client.get(AUTH, params=auth_params(key, state="s"))
    assert started.status_code == 302
    form = client.get(started.headers["location"])
    assert form.status_code == 200
    before += [value for value in (set_cookie(started), set_cookie(form)) if value]
    csrf = form_token(form.text)
    answer = client.post(
        "/login/canvas",
        data={
            "authenticity_token": csrf,
            "pseudonym_session[unique_id]": user.login,
            "pseudonym_session[password]": user.password,
        },
    )
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == "/login/oauth2/confirm"
    after = set_cookie(answer)
    assert after is not None
    assert after not in before
    assert signed_in(browser(client, after))

    for old in before:
        replayed = browser(client, old)
        assert not signed_in(replayed)
        # The pending request and the login form it carried are gone with it.
        assert replayed.get("/login/oauth2/confirm").headers["location"] == "/login/canvas"
        again = replayed.post(
            "/login/canvas",
            data={
                "authenticity_token": csrf,
                "pseudonym_session[unique_id]": user.login,
                "pseudonym_session[password]": user.password,
            },
        )
        assert again.status_code == 422, again.text
        named = directory.query(
            select(BrowserSession.id).where(BrowserSession.token_digest == secrets.digest(old))
        )
        assert named == []
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 1
