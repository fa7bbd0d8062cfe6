"""Bearer tokens on /api/ (spec 7): token extraction, the error shapes to the byte (and the
presence or absence of ``WWW-Authenticate``, which canvasapi relies on), url: scopes, and
/api/v1/users/self."""

from __future__ import annotations

import re

import pytest

from tests.canvas.support import API_CHALLENGE, issue_tokens, me, refresh
from tests.conftest import Directory, Key, Person

INVALID = b'{"errors":[{"message":"Invalid access token."}]}'
UNAUTHENTICATED = b'{"status":"unauthenticated","errors":[{"message":"user authorization required"}]}'
INSUFFICIENT = b'{"errors":[{"message":"Insufficient scopes on access token."}]}'
UNAUTHORIZED = (
    b'{"status":"unauthorized","errors":[{"message":"user not authorized to perform that action"}]}'
)
NOT_FOUND = b'{"errors":[{"message":"The specified resource does not exist."}]}'
USERS_ID = "url:GET|/api/v1/users/:id"
COURSES = "url:GET|/api/v1/courses"


@pytest.fixture
def token(client, key: Key, user: Person) -> str:
    access: str = issue_tokens(client, key, user)["access_token"]
    return access


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bearer_header_and_access_token_parameter(client, token: str, user: Person) -> None:
    by_header = client.get("/api/v1/users/self", headers=bearer(token))
    by_param = client.get("/api/v1/users/self", params={"access_token": token})
    assert by_header.status_code == by_param.status_code == 200
    assert by_header.json()["id"] == by_param.json()["id"] == user.id


def test_header_wins_over_parameter(client, token: str) -> None:
    response = client.get("/api/v1/users/self", params={"access_token": "garbage"}, headers=bearer(token))
    assert response.status_code == 200


@pytest.mark.parametrize("presented", ["garbage", "x" * 64, "x" * 1000])
def test_invalid_token(client, token: str, presented: str) -> None:
    response = client.get("/api/v1/users/self", headers=bearer(presented))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == API_CHALLENGE
    assert response.headers["content-type"] == "application/json"
    assert response.content == INVALID


def test_no_credentials(client, token: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic Zm9vOmJhcg=="},
    ):
        response = client.get("/api/v1/users/self", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == API_CHALLENGE
        assert response.content == UNAUTHENTICATED


def test_lowercase_bearer_scheme_is_not_a_bearer_token(client, token: str) -> None:
    for scheme in ("bearer", "BEARER", "Token"):
        response = client.get("/api/v1/users/self", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 401, scheme
        assert response.content == UNAUTHENTICATED
        assert response.headers["WWW-Authenticate"] == API_CHALLENGE


def test_a_browser_session_is_not_an_api_credential(client, token: str) -> None:
    # ``client`` is signed in (it went through the login form to get the token).
    response = client.get("/api/v1/users/self")
    assert response.status_code == 401
    assert response.content == UNAUTHENTICATED


def test_insufficient_scopes_has_no_challenge_header(client, directory: Directory, user: Person) -> None:
    key = directory.key(require_scopes=True, scopes=[USERS_ID, COURSES])
    body = issue_tokens(client, key, user, scope=COURSES)
    response = me(client, body["access_token"])
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers
    assert response.content == INSUFFICIENT


def test_scope_that_allows_the_route(client, directory: Directory, user: Person) -> None:
    key = directory.key(require_scopes=True, scopes=[USERS_ID, COURSES])
    token = issue_tokens(client, key, user, scope=USERS_ID)["access_token"]
    assert me(client, token).status_code == 200
    assert client.get(f"/api/v1/users/{user.id}", headers=bearer(token)).status_code == 200
    assert client.head("/api/v1/users/self", headers=bearer(token)).status_code == 200


def test_scopes_are_ignored_for_a_key_that_does_not_require_them(client, key: Key, user: Person) -> None:
    token = issue_tokens(client, key, user, scope=COURSES)["access_token"]
    assert me(client, token).status_code == 200


def test_other_users_id_is_unauthorized_without_challenge(client, directory: Directory, token: str) -> None:
    other = directory.user(login="other@example.edu", name="Other Person")
    response = client.get(f"/api/v1/users/{other.id}", headers=bearer(token))
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers
    assert response.content == UNAUTHORIZED


def test_admin_may_see_another_user(client, directory: Directory, key: Key) -> None:
    admin = directory.user(login="admin@example.edu", name="Ada Admin", admin=True)
    other = directory.user(login="other@example.edu", name="Other Person")
    token = issue_tokens(client, key, admin)["access_token"]
    response = client.get(f"/api/v1/users/{other.id}", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["name"] == "Other Person"


def test_own_id_local_or_global(client, token: str, user: Person) -> None:
    for user_id in (user.id, 10_000_000_000_000 + user.id):
        response = client.get(f"/api/v1/users/{user_id}", headers=bearer(token))
        assert response.status_code == 200, user_id
        assert response.json()["id"] == user.id


def test_unknown_user_id_is_404(client, token: str) -> None:
    for user_id in ("999999", "abc", "9" * 30, "-1"):
        response = client.get(f"/api/v1/users/{user_id}", headers=bearer(token))
        assert response.status_code == 404, user_id
        assert "WWW-Authenticate" not in response.headers
        assert response.content == NOT_FOUND


def test_unknown_api_path_is_404_with_the_api_body(client, token: str) -> None:
    for path in ("/api/v1/nothing/here", "/api/v1/users", "/api/v2/users/self"):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 404, path
        assert response.content == NOT_FOUND


def test_deactivating_the_key_stops_its_tokens_and_reactivating_restores_them(
    client, directory: Directory, key: Key, token: str
) -> None:
    directory.set_key_state(key.client_id, "inactive")
    response = me(client, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == API_CHALLENGE
    assert response.content == INVALID
    directory.set_key_state(key.client_id, "active")
    assert me(client, token).status_code == 200


def test_users_self_fields(client, directory: Directory, key: Key) -> None:
    user = directory.user(login="sam@example.edu", name="Sam Q Student")
    response = me(client, issue_tokens(client, key, user)["access_token"])
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user.id
    assert body["name"] == "Sam Q Student"
    assert body["sortable_name"] == "Student, Sam Q"
    assert body["short_name"] == "Sam Q Student"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["created_at"])
    assert body["locale"] is None
    assert body["effective_locale"] == "en"
    assert body["permissions"] == {
        "can_update_name": True,
        "can_update_avatar": False,
        "limit_parent_app_web_access": False,
    }
    assert body["email"] == "sam@example.edu"
    assert "uuid" not in body


def test_users_self_include_uuid_and_locale(client, directory: Directory, key: Key) -> None:
    user = directory.user(locale="de")
    token = issue_tokens(client, key, user)["access_token"]
    body = client.get("/api/v1/users/self", params={"include[]": "uuid"}, headers=bearer(token)).json()
    assert re.fullmatch(r"[0-9a-f]{40}", body["uuid"])
    assert body["locale"] == "de"
    assert body["effective_locale"] == "de"


def test_last_used_is_recorded(client, directory: Directory, token: str) -> None:
    from sqlalchemy import select

    from lmsauth.canvas.models import AccessToken

    assert directory.query(select(AccessToken.last_used_at)) == [(None,)]
    me(client, token)
    (used,) = directory.query(select(AccessToken.last_used_at))[0]
    assert used is not None


def update_key(directory: Directory, key: Key, **changes: object) -> None:
    """Save the key again under its client_id (the admin's "edit developer key")."""
    directory.key(
        redirect_uris=key.redirect_uris, client_id=key.client_id, client_secret=key.client_secret, **changes
    )


def test_turning_the_binding_off_stops_the_tokens(client, directory: Directory, key: Key, token: str) -> None:
    update_key(directory, key, binding="off")
    response = me(client, token)
    assert response.status_code == 401
    assert response.content == INVALID
    update_key(directory, key, binding="on")
    assert me(client, token).status_code == 200


def test_removing_a_scope_from_the_key_destroys_its_tokens(
    client, directory: Directory, user: Person
) -> None:
    key = directory.key(require_scopes=True, scopes=[USERS_ID, COURSES])
    body = issue_tokens(client, key, user, scope=USERS_ID)
    update_key(directory, key, require_scopes=True, scopes=[USERS_ID, COURSES, "url:GET|/api/v1/accounts"])
    assert me(client, body["access_token"]).status_code == 200  # adding a scope changes nothing
    update_key(directory, key, require_scopes=True, scopes=[USERS_ID])
    assert me(client, body["access_token"]).status_code == 401
    assert refresh(client, key, body["refresh_token"]).json() == {
        "error": "invalid_request",
        "error_description": "refresh_token not found",
    }
