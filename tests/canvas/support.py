"""Steps the Canvas conformance tests share: sign in, get a code, exchange it, count rows."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx
from sqlalchemy import func, select
from starlette.requests import Request

from lmsauth.canvas.sessions import LOGIN_COOKIE, LoginState, read_login_state
from tests.conftest import TEST_SECRET_KEY, Directory, Key, Person
from tests.flows import code_for, log_in

AUTH = "/login/oauth2/auth"
TOKEN = "/login/oauth2/token"
OOB = "urn:ietf:wg:oauth:2.0:oob"
OAUTH_CHALLENGE = "Canvas OAuth 2.0"
API_CHALLENGE = 'Bearer realm="canvas-lms"'


@dataclass
class Caller:
    """A person and an access token of theirs, for API tests."""

    person: Person
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def expected_query(**params: str) -> str:
    """Rails ``to_query`` written out independently: sorted pairs, CGI escaping."""
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(params.items()))


def auth_params(key: Key, **params: str) -> dict[str, str]:
    return {
        "client_id": key.client_id,
        "response_type": "code",
        "redirect_uri": key.redirect_uris[0],
        **params,
    }


def sign_in(client: Any, user: Person) -> None:
    response = log_in(client, user.login, user.password)
    assert response.status_code == 302, response.text


def pkce_pair(verifier: str = "a-verifier-that-is-long-enough-for-rfc-7636-0123456789") -> tuple[str, str]:
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def get_code(client: Any, key: Key, user: Person, redirect_uri: str | None = None, **params: str) -> str:
    return code_for(
        client, key.client_id, redirect_uri or key.redirect_uris[0], user.login, user.password, **params
    )


def exchange(
    client: Any, key: Key, code: str, *, redirect_uri: str | None = None, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "code": code,
        "redirect_uri": redirect_uri or key.redirect_uris[0],
        **extra,
    }
    return client.post(TOKEN, data={k: v for k, v in data.items() if v is not None})


def issue_tokens(client: Any, key: Key, user: Person, **params: str) -> dict[str, Any]:
    """The whole flow: sign in if needed, consent, exchange; the token response body."""
    response = exchange(client, key, get_code(client, key, user, **params))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(client: Any, key: Key, refresh_token: str, **extra: str) -> httpx.Response:
    data = {
        "grant_type": "refresh_token",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "refresh_token": refresh_token,
        **extra,
    }
    return client.post(TOKEN, data=data)


def me(client: Any, access_token: str) -> httpx.Response:
    response: httpx.Response = client.get(
        "/api/v1/users/self", headers={"Authorization": f"Bearer {access_token}"}
    )
    return response


def count(directory: Directory, model: Any, *where: Any) -> int:
    rows = directory.query(select(func.count()).select_from(model).where(*where))
    return int(rows[0][0])


def signed_in(client: Any) -> bool:
    """Whether the client's cookie is a signed-in session (the home page says so)."""
    page = client.get("/")
    assert page.status_code == 200, page.text
    return "Signed in as" in page.text


def login_state(client: Any) -> LoginState | None:
    """What the client's sealed ``canvas_login`` cookie holds, read as the server reads it."""
    value = client.cookies.get(LOGIN_COOKIE)
    request = Request({"type": "http", "headers": [(b"cookie", f"{LOGIN_COOKIE}={value}".encode())]})
    return read_login_state(request, TEST_SECRET_KEY) if value else None
