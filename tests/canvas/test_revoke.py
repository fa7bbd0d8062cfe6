"""DELETE /login/oauth2/token (spec 6): a token revokes itself, optionally ending the user's
browser sessions."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from lmsauth.canvas.models import AccessToken, BrowserSession
from lmsauth.core import clock
from tests.canvas.support import API_CHALLENGE, TOKEN, count, issue_tokens, me, refresh, sign_in, signed_in
from tests.conftest import Directory, Key, Person

NOT_OAUTH = b'{"message":"can\'t delete OAuth access token when not using an OAuth access token"}'


def second_browser(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="http://testserver", follow_redirects=False)


def test_revoke_with_bearer_header(client, directory: Directory, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    response = client.delete(TOKEN, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b"{}"
    assert me(client, body["access_token"]).status_code == 401
    assert refresh(client, key, body["refresh_token"]).status_code == 400
    assert directory.query(select(AccessToken.workflow_state)) == [("deleted",)]


def test_revoke_with_access_token_parameter(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    response = client.delete(TOKEN, params={"access_token": body["access_token"]})
    assert response.status_code == 200
    assert response.content == b"{}"
    assert me(client, body["access_token"]).status_code == 401


def test_revoke_with_access_token_in_a_form_body(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    response = client.request(
        "DELETE",
        TOKEN,
        content=f"access_token={body['access_token']}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert me(client, body["access_token"]).status_code == 401


def test_revoke_touches_only_that_token(client, key: Key, user: Person) -> None:
    first = issue_tokens(client, key, user)
    second = issue_tokens(client, key, user)
    assert (
        client.delete(TOKEN, headers={"Authorization": f"Bearer {first['access_token']}"}).status_code == 200
    )
    assert me(client, second["access_token"]).status_code == 200


def test_revoke_without_a_token(client, directory: Directory, key: Key, user: Person) -> None:
    issue_tokens(client, key, user)  # the browser is signed in: a cookie is not an OAuth token
    for headers in ({}, {"Authorization": "bearer lowercase-scheme"}, {"Authorization": "Basic abc"}):
        response = client.delete(TOKEN, headers=headers)
        assert response.status_code == 400, headers
        assert response.content == NOT_OAUTH
    response = client.delete(TOKEN, params={"access_token": ""})
    assert response.content == NOT_OAUTH
    assert count(directory, AccessToken, AccessToken.workflow_state == "active") == 1
    assert signed_in(client)


def test_revoke_with_an_invalid_token(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    for token in ("not-a-token", body["refresh_token"], "x" * 300):
        response = client.delete(TOKEN, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == API_CHALLENGE
        assert response.json() == {"errors": [{"message": "Invalid access token."}]}
    assert me(client, body["access_token"]).status_code == 200


def test_revoking_twice(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.delete(TOKEN, headers=headers).status_code == 200
    assert client.delete(TOKEN, headers=headers).status_code == 401


def test_soft_expired_token_may_still_revoke_itself(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    clock.advance(3601)
    assert me(client, body["access_token"]).status_code == 401
    response = client.delete(TOKEN, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 200
    # It could have been refreshed; now it cannot.
    assert refresh(client, key, body["refresh_token"]).json() == {
        "error": "invalid_request",
        "error_description": "refresh_token not found",
    }


def test_token_of_a_deactivated_key_cannot_revoke(
    client, directory: Directory, key: Key, user: Person
) -> None:
    body = issue_tokens(client, key, user)
    directory.set_key_state(key.client_id, "inactive")
    assert (
        client.delete(TOKEN, headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 401
    )


def test_expire_sessions_ends_every_browser_session_of_the_user(
    client, directory: Directory, key: Key, user: Person
) -> None:
    body = issue_tokens(client, key, user)
    other_device = second_browser(client)
    sign_in(other_device, user)
    someone_else = second_browser(client)
    sign_in(someone_else, directory.user(login="other@example.edu", name="Other Person"))
    assert signed_in(client) and signed_in(other_device)
    response = client.delete(
        TOKEN, params={"expire_sessions": "1"}, headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert response.status_code == 200
    assert response.content == b"{}"
    assert not signed_in(client)
    assert not signed_in(other_device)
    assert signed_in(someone_else)
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 0
    assert me(client, body["access_token"]).status_code == 401


def test_expire_sessions_from_a_client_without_cookies(
    client, directory: Directory, key: Key, user: Person
) -> None:
    body = issue_tokens(client, key, user)
    server_side = second_browser(client)  # e.g. the app's back end, which holds only the token
    response = server_side.delete(
        TOKEN, params={"expire_sessions": "1", "access_token": body["access_token"]}
    )
    assert response.status_code == 200
    assert not signed_in(client)


def test_without_expire_sessions_the_browser_stays_signed_in(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    assert (
        client.delete(TOKEN, headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200
    )
    assert signed_in(client)


def test_expire_sessions_without_a_token_still_logs_the_browser_out(
    client, directory: Directory, key: Key, user: Person
) -> None:
    body = issue_tokens(client, key, user)
    response = client.delete(TOKEN, params={"expire_sessions": "1"})
    assert response.status_code == 400
    assert response.content == NOT_OAUTH
    assert not signed_in(client)
    # The token itself is untouched.
    assert me(client, body["access_token"]).status_code == 200
