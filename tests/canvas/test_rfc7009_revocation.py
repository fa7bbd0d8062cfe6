"""RFC 7009 revocation (``POST /login/oauth2/revoke``), the form-url-encoded Basic credentials
of RFC 6749 section 2.3.1, and the metadata that advertises them."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from lmsauth.canvas.models import AccessToken
from tests.canvas.support import TOKEN, count, exchange, get_code, issue_tokens, me, pkce_pair, refresh
from tests.conftest import Directory, Key, Person

REVOKE = "/login/oauth2/revoke"
# A secret with every character oauth4webapi's formUrlEncode changes, and a space-like '+'.
ENCODED_SECRET = "demo-secret_with.odd!chars~*'()+and:colon"


def form_encoded_basic(client_id: str, secret: str) -> dict[str, str]:
    """What openid-client sends: each part form-url-encoded, then Base64 (RFC 6749 2.3.1)."""

    def encode(text: str) -> str:
        return quote(text, safe="").replace("%20", "+")

    pair = f"{encode(client_id)}:{encode(secret)}".replace("-", "%2D").replace("_", "%5F").replace(".", "%2E")
    pair = pair.replace("!", "%21").replace("~", "%7E").replace("*", "%2A").replace("'", "%27")
    pair = pair.replace("(", "%28").replace(")", "%29")
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def raw_basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def revoke(client, key: Key, token: str, **extra: str):
    data = {"token": token, "client_id": key.client_id, "client_secret": key.client_secret, **extra}
    return client.post(REVOKE, data=data)


def active_tokens(directory: Directory) -> int:
    return count(directory, AccessToken, AccessToken.workflow_state == "active")


# ---------------------------------------------------------------- revocation


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "something_else"])
def test_either_token_revokes_the_grant(client, key: Key, user: Person, which: str, hint: str | None) -> None:
    body = issue_tokens(client, key, user)
    response = revoke(client, key, body[which], **({"token_type_hint": hint} if hint else {}))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert me(client, body["access_token"]).status_code == 401
    assert refresh(client, key, body["refresh_token"]).status_code == 400


def test_unknown_and_repeated_revocations_answer_200(
    client, directory: Directory, key: Key, user: Person
) -> None:
    body = issue_tokens(client, key, user)
    assert revoke(client, key, "not-a-token").status_code == 200
    assert revoke(client, key, "x" * 4000).status_code == 200
    assert active_tokens(directory) == 1
    assert revoke(client, key, body["access_token"]).status_code == 200
    assert revoke(client, key, body["access_token"]).status_code == 200
    assert active_tokens(directory) == 0


def test_another_clients_token_is_left_alone(client, directory: Directory, key: Key, user: Person) -> None:
    """The answer is the same 200, and nothing tells the caller the token exists."""
    body = issue_tokens(client, key, user)
    other = directory.key(redirect_uris=key.redirect_uris)
    for token in (body["access_token"], body["refresh_token"]):
        response = revoke(client, other, token)
        assert response.status_code == 200
        assert response.content == b""
    assert me(client, body["access_token"]).status_code == 200


def test_client_must_authenticate(client, directory: Directory, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    wrong = client.post(
        REVOKE, data={"token": body["access_token"], "client_id": key.client_id, "client_secret": "nope"}
    )
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid_client", "error_description": "invalid client"}
    unknown = client.post(REVOKE, data={"token": body["access_token"], "client_id": "999999"})
    assert unknown.status_code == 401
    assert unknown.json() == {"error": "invalid_client", "error_description": "unknown client"}
    no_secret = client.post(REVOKE, data={"token": body["access_token"], "client_id": key.client_id})
    assert no_secret.status_code == 401
    assert me(client, body["access_token"]).status_code == 200
    assert active_tokens(directory) == 1


def test_missing_token_and_repeated_parameters(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    missing = client.post(REVOKE, data={"client_id": key.client_id, "client_secret": key.client_secret})
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "invalid_request",
        "error_description": "You must provide the token parameter",
    }
    twice = client.post(
        REVOKE,
        content=f"token={body['access_token']}&token=other&client_id={key.client_id}&client_secret={key.client_secret}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400
    assert twice.json()["error"] == "invalid_request"
    assert me(client, body["access_token"]).status_code == 200


def test_only_post(client) -> None:
    assert client.get(REVOKE).status_code == 405


def test_public_client_revokes_with_its_id_alone(client, directory: Directory, user: Person) -> None:
    key = directory.key(client_type="public")
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    body = exchange(client, key, code, client_secret=None, code_verifier=verifier).json()
    response = client.post(REVOKE, data={"token": body["refresh_token"], "client_id": key.client_id})
    assert response.status_code == 200
    assert me(client, body["access_token"]).status_code == 401


def test_strict_revocation_takes_the_whole_family(strict_client, key: Key, user: Person) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(strict_client, key, user, code_challenge=challenge, code_challenge_method="S256")
    first = exchange(strict_client, key, code, code_verifier=verifier).json()
    one = refresh(strict_client, key, first["refresh_token"]).json()
    other = refresh(strict_client, key, first["refresh_token"]).json()  # within the grace period
    assert revoke(strict_client, key, one["refresh_token"]).status_code == 200
    assert me(strict_client, other["access_token"]).status_code == 401
    assert refresh(strict_client, key, other["refresh_token"]).status_code == 400


# ---------------------------------------------------------------- RFC 6749 2.3.1 Basic


@pytest.mark.parametrize("encode", [form_encoded_basic, raw_basic])
def test_basic_credentials_raw_or_form_url_encoded(
    client, directory: Directory, user: Person, encode
) -> None:
    key = directory.key(client_secret=ENCODED_SECRET)
    code = get_code(client, key, user)
    response = client.post(
        TOKEN,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": key.redirect_uris[0]},
        headers=encode(key.client_id, key.client_secret),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    revoked = client.post(
        REVOKE, data={"token": body["access_token"]}, headers=encode(key.client_id, key.client_secret)
    )
    assert revoked.status_code == 200
    assert me(client, body["access_token"]).status_code == 401


def test_form_url_decoding_does_not_accept_another_secret(client, directory: Directory, user: Person) -> None:
    """Only the secret itself, sent raw or encoded, is accepted: not its decoding when the
    registered secret is the encoded text."""
    key = directory.key(client_secret="abc%2Ddef-long-enough-0123")
    code = get_code(client, key, user)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": key.redirect_uris[0]}
    assert (
        client.post(
            TOKEN, data=data, headers=raw_basic(key.client_id, "abc-def-long-enough-0123")
        ).status_code
        == 401
    )
    assert (
        client.post(
            TOKEN, data=data, headers=raw_basic(key.client_id, "abc%2Ddef-long-enough-0123")
        ).status_code
        == 200
    )


# ---------------------------------------------------------------- metadata


def test_metadata_advertises_revocation_and_no_useless_scopes(client) -> None:
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["revocation_endpoint"] == "http://testserver/login/oauth2/revoke"
    assert body["revocation_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "client_secret_basic",
        "none",
    ]
    assert "scopes_supported" not in body
