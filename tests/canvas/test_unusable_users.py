"""Deleted and suspended users (``canvas.people``): nothing issued to them works any more.

Canvas suspends logins, not users (``Pseudonym#workflow_state``; the Users API's
``user[event]=suspend`` suspends them all). Every path that acts for a user refuses one who is
deleted or suspended with the answer it gives an unknown credential: the API's invalid access
token, the refresh refusal, the unknown code, the login form's failure. Unsuspending brings
the tokens back; deleting is for good.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from lmsauth.canvas import admin
from lmsauth.canvas.login import LOGIN_FAILED
from lmsauth.canvas.models import BrowserSession, Login, User
from lmsauth.core.db import Database
from lmsauth.settings import Settings
from tests.canvas.support import (
    API_CHALLENGE,
    AUTH,
    auth_params,
    count,
    exchange,
    get_code,
    issue_tokens,
    me,
    pkce_pair,
    refresh,
    sign_in,
    signed_in,
)
from tests.conftest import Directory, Key, Person, run
from tests.flows import log_in

STATES = ["deleted", "suspended"]
INVALID_TOKEN = {"errors": [{"message": "Invalid access token."}]}
REFRESH_REFUSED = {"error": "invalid_request", "error_description": "refresh_token not found"}
STRICT_REFRESH_REFUSED = {
    "error": "invalid_grant",
    "error_description": "refresh_token not found",
}  # RFC 6749 5.2
CODE_REFUSED = {"error": "invalid_grant", "error_description": "authorization_code not found"}


def _as_admin(settings: Settings, work: Callable[[AsyncSession], Awaitable[Any]]) -> None:
    async def main() -> None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await work(session)
        finally:
            await db.dispose()

    run(main())


def make(settings: Settings, user: Person, state: str) -> None:
    """The user becomes ``state`` the way an operator makes them so (``canvas.admin``)."""

    async def work(session: AsyncSession) -> None:
        if state == "deleted":
            await admin.delete_user(session, user.login)
        else:
            await admin.set_user_suspended(session, user.login, True)

    _as_admin(settings, work)


def unsuspend(settings: Settings, user: Person) -> None:
    _as_admin(settings, lambda session: admin.set_user_suspended(session, user.login, False))


def refused_token(response: httpx.Response) -> bool:
    return (
        response.status_code == 401
        and response.json() == INVALID_TOKEN
        and response.headers.get("WWW-Authenticate") == API_CHALLENGE
    )


# ---------------------------------------------------------------- each path, each state


@pytest.mark.parametrize("state", STATES)
def test_the_api_refuses_their_access_token(
    client: TestClient, settings: Settings, key: Key, user: Person, state: str
) -> None:
    body = issue_tokens(client, key, user)
    assert me(client, body["access_token"]).status_code == 200
    make(settings, user, state)
    assert refused_token(me(client, body["access_token"]))
    # Through the ``access_token`` parameter too: the same single check.
    response = client.get("/api/v1/users/self", params={"access_token": body["access_token"]})
    assert refused_token(response)


@pytest.mark.parametrize("state", STATES)
def test_their_refresh_token_is_refused(
    client: TestClient, settings: Settings, key: Key, user: Person, state: str
) -> None:
    body = issue_tokens(client, key, user)
    make(settings, user, state)
    response = refresh(client, key, body["refresh_token"])
    assert response.status_code == 400
    assert response.json() == REFRESH_REFUSED


@pytest.mark.parametrize("state", STATES)
def test_their_refresh_token_is_refused_in_the_strict_profile(
    strict_client: TestClient, settings: Settings, key: Key, user: Person, state: str
) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(strict_client, key, user, code_challenge=challenge, code_challenge_method="S256")
    body = exchange(strict_client, key, code, code_verifier=verifier).json()
    make(settings, user, state)
    response = refresh(strict_client, key, body["refresh_token"])
    assert response.status_code == 400
    assert response.json() == STRICT_REFRESH_REFUSED


@pytest.mark.parametrize("state", STATES)
def test_a_code_issued_before_is_refused(
    client: TestClient, settings: Settings, key: Key, user: Person, state: str
) -> None:
    code = get_code(client, key, user)
    make(settings, user, state)
    response = exchange(client, key, code)
    assert response.status_code == 400
    assert response.json() == CODE_REFUSED


@pytest.mark.parametrize("state", STATES)
def test_their_browser_sessions_end(
    client: TestClient, settings: Settings, directory: Directory, key: Key, user: Person, state: str
) -> None:
    sign_in(client, user)
    assert signed_in(client)
    make(settings, user, state)
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 0
    assert not signed_in(client)
    # The OAuth flow asks for a login instead of sending the client a code.
    response = client.get(AUTH, params=auth_params(key))
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login/canvas")


@pytest.mark.parametrize("state", STATES)
def test_a_session_left_behind_acts_for_nobody(
    client: TestClient, settings: Settings, directory: Directory, key: Key, user: Person, state: str
) -> None:
    """Made so by a tool other than ``canvas.admin``, which leaves the browser session in place:
    the pages still refuse to act for the user."""
    sign_in(client, user)
    if state == "deleted":
        change: Any = update(User).where(User.id == user.id).values(workflow_state="deleted")
    else:
        change = update(Login).where(Login.user_id == user.id).values(workflow_state="suspended")
    _as_admin(settings, lambda session: session.execute(change))
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 1
    assert not signed_in(client)
    response = client.get(AUTH, params=auth_params(key))
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login/canvas")
    tools = client.get("/accounts/1/external_tools")
    assert (tools.status_code, tools.headers.get("location")) == (302, "/login/canvas")


@pytest.mark.parametrize("state", STATES)
def test_they_cannot_sign_in(client: TestClient, settings: Settings, user: Person, state: str) -> None:
    make(settings, user, state)
    response = log_in(client, user.login, user.password)
    assert response.status_code == 400
    assert LOGIN_FAILED in response.text
    assert not signed_in(client)


def test_an_admin_finds_no_deleted_user_and_still_manages_a_suspended_one(
    client: TestClient, settings: Settings, directory: Directory, key: Key
) -> None:
    """``GET /api/v1/users/:id`` answers 404 for a deleted user, as for an id nobody has; a
    suspended user is still there for an admin to manage (and unsuspend), as in Canvas."""
    admin_user = directory.user(login="admin@example.edu", name="Ada Admin", admin=True)
    other = directory.user(login="other@example.edu", name="Olly Other")
    token = issue_tokens(client, key, admin_user)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/users/{other.id}", headers=headers).status_code == 200
    make(settings, other, "suspended")
    assert client.get(f"/api/v1/users/{other.id}", headers=headers).status_code == 200
    make(settings, other, "deleted")
    response = client.get(f"/api/v1/users/{other.id}", headers=headers)
    assert response.status_code == 404
    assert response.json() == client.get("/api/v1/users/999999", headers=headers).json()


# ---------------------------------------------------------------- unsuspending


def test_unsuspending_restores_tokens_codes_and_sign_in(
    client: TestClient, settings: Settings, key: Key, user: Person
) -> None:
    body = issue_tokens(client, key, user)
    code = get_code(client, key, user)
    make(settings, user, "suspended")
    assert refused_token(me(client, body["access_token"]))
    assert refresh(client, key, body["refresh_token"]).json() == REFRESH_REFUSED
    unsuspend(settings, user)
    assert me(client, body["access_token"]).status_code == 200
    refreshed = refresh(client, key, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert me(client, refreshed.json()["access_token"]).status_code == 200
    assert exchange(client, key, code).status_code == 200
    assert log_in(client, user.login, user.password).status_code == 302
    assert signed_in(client)


def test_strict_refresh_works_again_after_unsuspending(
    strict_client: TestClient, settings: Settings, key: Key, user: Person
) -> None:
    """A refusal while suspended used nothing up: the family is intact."""
    verifier, challenge = pkce_pair()
    code = get_code(strict_client, key, user, code_challenge=challenge, code_challenge_method="S256")
    body = exchange(strict_client, key, code, code_verifier=verifier).json()
    make(settings, user, "suspended")
    assert refresh(strict_client, key, body["refresh_token"]).json() == STRICT_REFRESH_REFUSED
    unsuspend(settings, user)
    response = refresh(strict_client, key, body["refresh_token"])
    assert response.status_code == 200, response.text
    assert me(strict_client, response.json()["access_token"]).status_code == 200


# ---------------------------------------------------------------- what "suspended" means


def test_a_user_is_suspended_only_when_no_login_is_active(
    client: TestClient, settings: Settings, directory: Directory, key: Key, user: Person
) -> None:
    token = issue_tokens(client, key, user)["access_token"]
    (account_id,) = directory.query(select(Login.account_id))[0]

    async def second_login(session: AsyncSession) -> None:
        session.add(
            Login(
                user_id=user.id,
                account_id=account_id,
                unique_id="second@example.edu",
                unique_id_normalized="second@example.edu",
                password_hash="not-a-hash",
                workflow_state="suspended",
            )
        )

    _as_admin(settings, second_login)
    assert me(client, token).status_code == 200  # one active login of two
    _as_admin(
        settings,
        lambda session: session.execute(
            update(Login).where(Login.unique_id == user.login).values(workflow_state="suspended")
        ),
    )
    assert refused_token(me(client, token))  # none active
    _as_admin(settings, lambda session: session.execute(delete(Login)))
    assert me(client, token).status_code == 200  # no login at all: nothing is suspended


def test_admin_refuses_an_unknown_or_deleted_login(settings: Settings, user: Person) -> None:
    with pytest.raises(admin.AdminError, match=r"no user with login nobody@example\.edu"):
        _as_admin(settings, lambda session: admin.set_user_suspended(session, "nobody@example.edu", True))
    make(settings, user, "deleted")
    with pytest.raises(admin.AdminError, match="no user with login"):
        unsuspend(settings, user)
