"""The strict profile answers errors as RFC 6749 section 5.2 and RFC 6750 section 3.1 say; the
canvas profile keeps Canvas's answers (README, "fidelity")."""

from __future__ import annotations

import base64

from tests.canvas.support import TOKEN, exchange, get_code, issue_tokens, me, pkce_pair, refresh
from tests.conftest import Directory, Key, Person


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def strict_tokens(client, key: Key, user: Person) -> dict:
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, key, code, code_verifier=verifier)
    assert response.status_code == 200, response.text
    return response.json()


def test_strict_unknown_refresh_token_is_invalid_grant(strict_client, key: Key) -> None:
    response = refresh(strict_client, key, "unknown")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "refresh_token not found"}


def test_canvas_unknown_refresh_token_stays_invalid_request(client, key: Key) -> None:
    response = refresh(client, key, "unknown")
    assert response.json() == {"error": "invalid_request", "error_description": "refresh_token not found"}


def test_strict_revoked_refresh_token_is_invalid_grant(strict_client, key: Key, user: Person) -> None:
    body = strict_tokens(strict_client, key, user)
    strict_client.delete(TOKEN, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert refresh(strict_client, key, body["refresh_token"]).json()["error"] == "invalid_grant"


def test_strict_failed_basic_authentication_gets_the_basic_challenge(strict_client, key: Key) -> None:
    data = {"grant_type": "refresh_token", "refresh_token": "x"}
    wrong = strict_client.post(TOKEN, data=data, headers=basic(key.client_id, "wrong"))
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid_client", "error_description": "invalid client"}
    assert wrong.headers["www-authenticate"] == 'Basic realm="canvas-lms"'
    unknown = strict_client.post(TOKEN, data=data, headers=basic("999999", "wrong"))
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == 'Basic realm="canvas-lms"'


def test_strict_failed_body_authentication_keeps_canvas_challenge(strict_client, key: Key) -> None:
    """Credentials in the body were not sent with a scheme: RFC 6749 leaves the challenge open."""
    response = strict_client.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": key.client_id,
            "client_secret": "no",
        },
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Canvas OAuth 2.0"


def test_canvas_failed_basic_authentication_keeps_canvas_challenge(client, key: Key) -> None:
    response = client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers=basic(key.client_id, "wrong"),
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Canvas OAuth 2.0"


def test_strict_api_challenge_names_invalid_token(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    response = me(strict_client, "not-a-token")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="canvas-lms", error="invalid_token"'
    assert response.json() == {"errors": [{"message": "Invalid access token."}]}
    revoked = strict_client.delete(TOKEN, headers={"Authorization": "Bearer not-a-token"})
    assert revoked.headers["www-authenticate"] == 'Bearer realm="canvas-lms", error="invalid_token"'


def test_canvas_api_challenge_is_canvas_own(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    assert me(client, body["access_token"]).status_code == 200
    response = me(client, "not-a-token")
    assert response.headers["www-authenticate"] == 'Bearer realm="canvas-lms"'
