"""POST /login/oauth2/token: every row of spec table 5.8, plus the deliberate additions
(redirect_uri re-check, code reuse revokes, no PKCE downgrade, repeated parameters refused)."""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import select

from lmsauth.canvas.models import AccessToken, AuthorizationCode
from lmsauth.core import clock
from tests.canvas.support import (
    OAUTH_CHALLENGE,
    TOKEN,
    count,
    exchange,
    get_code,
    issue_tokens,
    me,
    pkce_pair,
    refresh,
)
from tests.conftest import Directory, Key, Person

UNSUPPORTED = {
    "error": "unsupported_grant_type",
    "error_description": "The grant_type you requested is not currently supported",
}
UNKNOWN_CLIENT = {"error": "invalid_client", "error_description": "unknown client"}
INVALID_CLIENT = {"error": "invalid_client", "error_description": "invalid client"}
CODE_NOT_FOUND = {"error": "invalid_grant", "error_description": "authorization_code not found"}
INCORRECT_CLIENT = {"error": "invalid_grant", "error_description": "incorrect client"}
MISSING_CODE = "You must provide the code parameter when using the authorization_code grant type"
MISSING_REFRESH = "You must provide the refresh_token parameter when using the refresh_token grant type"
SLUG = re.compile(r"[2346789acefhkmnrtuvwxyzABCDEFGHJKLMNPQRTUVWXYZ]{64}")


def tokens_written(directory: Directory) -> int:
    return count(directory, AccessToken)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


# ---------------------------------------------------------------- grant_type dispatch


def test_unsupported_grant_type(client, key: Key) -> None:
    credentials = {"client_id": key.client_id, "client_secret": key.client_secret}
    for data in [
        {},
        credentials,
        {**credentials, "grant_type": "password", "username": "a", "password": "b"},
        {**credentials, "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        {**credentials, "grant_type": "implicit"},
        {**credentials, "grant_type": ""},
        {**credentials, "grant_type": "AUTHORIZATION_CODE", "code": "x"},
    ]:
        response = client.post(TOKEN, data=data)
        assert response.status_code == 400, data
        assert response.json() == UNSUPPORTED


def test_unsupported_grant_type_is_checked_before_the_client(client) -> None:
    response = client.post(TOKEN, data={"grant_type": "password", "client_id": "nope"})
    assert response.status_code == 400
    assert response.json() == UNSUPPORTED


def test_missing_grant_type_with_a_code_is_authorization_code(client, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    response = client.post(
        TOKEN,
        data={
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": key.redirect_uris[0],
        },
    )
    assert response.status_code == 200, response.text
    assert SLUG.fullmatch(response.json()["access_token"])


# ---------------------------------------------------------------- client authentication


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token", "client_credentials"])
def test_unknown_client(client, key: Key, grant_type: str) -> None:
    for client_id in [None, "", "999999", "abc", str(2**63), str(2**64)]:
        data = {
            "grant_type": grant_type,
            "client_secret": key.client_secret,
            "code": "x",
            "refresh_token": "y",
        }
        if client_id is not None:
            data["client_id"] = client_id
        response = client.post(TOKEN, data=data)
        assert response.status_code == 401, client_id
        assert response.headers["WWW-Authenticate"] == OAUTH_CHALLENGE
        assert response.json() == UNKNOWN_CLIENT


def test_inactive_client_is_unknown(client, directory: Directory, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    directory.set_key_state(key.client_id, "inactive")
    response = exchange(client, key, code)
    assert response.status_code == 401
    assert response.json() == UNKNOWN_CLIENT
    directory.set_key_state(key.client_id, "active")
    assert exchange(client, key, code).status_code == 200


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token"])
def test_wrong_or_missing_secret(client, key: Key, grant_type: str) -> None:
    for secret in [None, "", "wrong-secret", "x" * 64, key.client_secret[:-1], key.client_secret + " "]:
        data = {"grant_type": grant_type, "client_id": key.client_id, "code": "x", "refresh_token": "y"}
        if secret is not None:
            data["client_secret"] = secret
        response = client.post(TOKEN, data=data)
        assert response.status_code == 401, secret
        assert response.headers["WWW-Authenticate"] == OAUTH_CHALLENGE
        assert response.headers["Cache-Control"] == "no-store"
        assert response.json() == INVALID_CLIENT


def test_secret_of_another_key_is_refused(client, directory: Directory, key: Key) -> None:
    other = directory.key(name="Other")
    response = client.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": other.client_secret,
            "code": "x",
        },
    )
    assert response.json() == INVALID_CLIENT


def test_http_basic_credentials_split_at_the_first_colon(client, directory: Directory, user: Person) -> None:
    key = directory.key(client_secret="part-one:part-two:part-three")
    code = get_code(client, key, user)
    response = client.post(
        TOKEN,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": key.redirect_uris[0]},
        headers=basic(key.client_id, key.client_secret),
    )
    assert response.status_code == 200, response.text


def test_http_basic_wrong_password(client, key: Key) -> None:
    response = client.post(
        TOKEN, data={"grant_type": "authorization_code", "code": "x"}, headers=basic(key.client_id, "nope")
    )
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_unreadable_basic_header_means_no_credentials(client, key: Key) -> None:
    for header in [
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer abc",
        "Basic",
    ]:
        response = client.post(
            TOKEN, data={"grant_type": "authorization_code", "code": "x"}, headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert response.json() == UNKNOWN_CLIENT


def test_parameters_win_over_basic(client, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    response = client.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": key.redirect_uris[0],
        },
        headers=basic(key.client_id, "not-the-secret"),
    )
    assert response.status_code == 200, response.text


def test_json_body_is_accepted(client, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    response = client.post(
        TOKEN,
        json={
            "grant_type": "authorization_code",
            "client_id": int(key.client_id),
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": key.redirect_uris[0],
            "replace_tokens": True,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


def test_malformed_json_body(client) -> None:
    response = client.post(TOKEN, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# ---------------------------------------------------------------- authorization_code


def test_missing_code(client, key: Key) -> None:
    for data in ({}, {"code": ""}, {"grant_type": "authorization_code"}):
        response = client.post(
            TOKEN,
            data={
                "grant_type": "authorization_code",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
                **data,
            },
        )
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_request", "error_description": MISSING_CODE}


def test_unknown_code(client, key: Key) -> None:
    response = exchange(client, key, "0" * 128)
    assert response.status_code == 400
    assert response.json() == CODE_NOT_FOUND


def test_expired_code(client, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    clock.advance(601)
    response = exchange(client, key, code)
    assert response.status_code == 400
    assert response.json() == CODE_NOT_FOUND


def test_code_just_before_expiry_works(client, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    clock.advance(590)
    assert exchange(client, key, code).status_code == 200


def test_code_of_another_key_is_refused_and_not_consumed(
    client, directory: Directory, key: Key, user: Person
) -> None:
    other = directory.key(name="Other")
    code = get_code(client, key, user)
    response = exchange(client, other, code, redirect_uri=key.redirect_uris[0])
    assert response.status_code == 400
    assert response.json() == INCORRECT_CLIENT
    assert tokens_written(directory) == 0
    assert exchange(client, key, code).status_code == 200


def test_redirect_uri_must_equal_the_one_sent_to_auth(client, directory: Directory, user: Person) -> None:
    key = directory.key(redirect_uris=["https://app.example.com/a", "https://app.example.com/b"])
    code = get_code(client, key, user, redirect_uri="https://app.example.com/b")
    for wrong in ("https://app.example.com/a", None, ""):
        data = {
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
        }
        if wrong is not None:
            data["redirect_uri"] = wrong
        response = client.post(TOKEN, data=data)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": "redirect_uri does not match the authorization request",
        }
    assert tokens_written(directory) == 0
    assert exchange(client, key, code, redirect_uri="https://app.example.com/b").status_code == 200


def test_code_is_single_use_and_reuse_revokes_its_tokens(
    client, directory: Directory, key: Key, user: Person
) -> None:
    code = get_code(client, key, user)
    first = exchange(client, key, code)
    assert first.status_code == 200
    body = first.json()
    assert me(client, body["access_token"]).status_code == 200
    second = exchange(client, key, code)
    assert second.status_code == 400
    assert second.json() == CODE_NOT_FOUND
    revoked = me(client, body["access_token"])
    assert revoked.status_code == 401
    assert revoked.json() == {"errors": [{"message": "Invalid access token."}]}
    assert refresh(client, key, body["refresh_token"]).json() == {
        "error": "invalid_request",
        "error_description": "refresh_token not found",
    }


def test_another_client_replaying_a_used_code_revokes_nothing(
    client, directory: Directory, key: Key, user: Person
) -> None:
    """Ownership is checked before reuse: a leaked, used code in another client's hands is
    just "not found", and the owner's tokens live on."""
    code = get_code(client, key, user)
    owner = exchange(client, key, code)
    assert owner.status_code == 200
    other = directory.key(redirect_uris=key.redirect_uris)
    replay = exchange(client, other, code)
    assert replay.status_code == 400
    assert replay.json() == CODE_NOT_FOUND
    assert me(client, owner.json()["access_token"]).status_code == 200
    assert refresh(client, key, owner.json()["refresh_token"]).status_code == 200


def test_another_clients_live_code_stays_usable_by_its_owner(
    client, directory: Directory, key: Key, user: Person
) -> None:
    code = get_code(client, key, user)
    other = directory.key(redirect_uris=key.redirect_uris)
    refused = exchange(client, other, code)
    assert refused.status_code == 400
    assert refused.json() == INCORRECT_CLIENT
    assert exchange(client, key, code).status_code == 200


def test_code_reuse_does_not_touch_other_tokens(client, key: Key, user: Person) -> None:
    kept = issue_tokens(client, key, user)
    code = get_code(client, key, user)
    assert exchange(client, key, code).status_code == 200
    exchange(client, key, code)
    assert me(client, kept["access_token"]).status_code == 200


def test_codes_are_128_hex_and_stored_as_digests(
    client, directory: Directory, key: Key, user: Person
) -> None:
    code = get_code(client, key, user)
    assert re.fullmatch(r"[0-9a-f]{128}", code)
    digests = [row[0] for row in directory.query(select(AuthorizationCode.code_digest))]
    assert len(digests) == 1
    assert code not in digests[0]


# ---------------------------------------------------------------- PKCE


def test_pkce_s256_correct_verifier(client, key: Key, user: Person) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, key, code, code_verifier=verifier)
    assert response.status_code == 200, response.text


def test_pkce_wrong_or_missing_verifier(client, directory: Directory, key: Key, user: Person) -> None:
    right, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    for verifier in ["wrong-verifier-wrong-verifier-wrong-verifier-0000", "", None, challenge]:
        response = exchange(client, key, code, code_verifier=verifier)
        assert response.status_code == 400, verifier
        assert response.json() == {"error": "invalid_grant", "error_description": "invalid code_verifier"}
    assert tokens_written(directory) == 0
    assert exchange(client, key, code, code_verifier=right).status_code == 200


def test_pkce_verifier_for_a_code_without_challenge(client, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    response = exchange(client, key, code, code_verifier=pkce_pair()[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_pkce_other_methods_are_ignored(client, key: Key, user: Person) -> None:
    verifier, _ = pkce_pair()
    for method in ["plain", None, "S512", "s256"]:
        params = {"code_challenge": verifier}
        if method is not None:
            params["code_challenge_method"] = method
        code = get_code(client, key, user, **params)
        # No challenge was stored: the code is an ordinary one.
        assert exchange(client, key, code).status_code == 200, method


def test_public_client_with_pkce_needs_no_secret(client, directory: Directory, user: Person) -> None:
    key = directory.key(client_type="public")
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    response = client.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "code": code,
            "redirect_uri": key.redirect_uris[0],
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert SLUG.fullmatch(body["refresh_token"])
    assert me(client, body["access_token"]).status_code == 200


def test_public_client_without_pkce_needs_its_secret(client, directory: Directory, user: Person) -> None:
    key = directory.key(client_type="public")
    code = get_code(client, key, user)
    data = {
        "grant_type": "authorization_code",
        "client_id": key.client_id,
        "code": code,
        "redirect_uri": key.redirect_uris[0],
    }
    response = client.post(TOKEN, data=data)
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_public_client_that_sends_a_wrong_secret_is_refused(
    client, directory: Directory, user: Person
) -> None:
    key = directory.key(client_type="public")
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, Key(key.client_id, "wrong", key.redirect_uris), code, code_verifier=verifier)
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_confidential_client_with_pkce_still_needs_its_secret(client, key: Key, user: Person) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, Key(key.client_id, "", key.redirect_uris), code, code_verifier=verifier)
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_public_client_refresh_rotates_the_refresh_token(client, directory: Directory, user: Person) -> None:
    key = directory.key(client_type="public")
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    first = exchange(client, Key(key.client_id, "", key.redirect_uris), code, code_verifier=verifier).json()
    data = {
        "grant_type": "refresh_token",
        "client_id": key.client_id,
        "refresh_token": first["refresh_token"],
    }
    rotated = client.post(TOKEN, data=data)
    assert rotated.status_code == 200, rotated.text
    new_refresh = rotated.json()["refresh_token"]
    assert new_refresh != first["refresh_token"]
    assert client.post(TOKEN, data=data).json() == {
        "error": "invalid_request",
        "error_description": "refresh_token not found",
    }
    assert client.post(TOKEN, data={**data, "refresh_token": new_refresh}).status_code == 200


def test_public_client_token_hard_expires_after_120_minutes(
    client, directory: Directory, user: Person
) -> None:
    key = directory.key(client_type="public")
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    body = exchange(client, Key(key.client_id, "", key.redirect_uris), code, code_verifier=verifier).json()
    clock.advance(120 * 60 + 1)
    data = {"grant_type": "refresh_token", "client_id": key.client_id, "refresh_token": body["refresh_token"]}
    assert client.post(TOKEN, data=data).json() == {
        "error": "invalid_request",
        "error_description": "refresh_token not found",
    }


# ---------------------------------------------------------------- refresh_token


def test_refresh_without_refresh_token(client, key: Key) -> None:
    for extra in ({}, {"refresh_token": ""}):
        response = client.post(
            TOKEN,
            data={
                "grant_type": "refresh_token",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
                **extra,
            },
        )
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_request", "error_description": MISSING_REFRESH}


def test_unknown_refresh_token(client, key: Key) -> None:
    response = refresh(client, key, "not-a-refresh-token")
    assert response.status_code == 400
    assert response.content == b'{"error":"invalid_request","error_description":"refresh_token not found"}'


def test_refresh_token_of_another_key(client, directory: Directory, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    other = directory.key(name="Other")
    response = refresh(client, other, body["refresh_token"])
    assert response.status_code == 400
    assert response.json() == INCORRECT_CLIENT
    assert me(client, body["access_token"]).status_code == 200


def test_refresh_gives_a_new_access_token_only(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    response = refresh(client, key, body["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    renewed = response.json()
    assert set(renewed) == {"access_token", "token_type", "user", "canvas_region", "expires_in"}
    assert renewed["access_token"] != body["access_token"]
    assert renewed["expires_in"] == 3600
    assert me(client, renewed["access_token"]).status_code == 200
    old = me(client, body["access_token"])
    assert old.status_code == 401
    # A confidential client's refresh token is not rotated: it works again.
    again = refresh(client, key, body["refresh_token"])
    assert again.status_code == 200
    assert me(client, renewed["access_token"]).status_code == 401
    assert me(client, again.json()["access_token"]).status_code == 200


def test_access_token_expires_after_an_hour_and_can_be_refreshed(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    clock.freeze()  # 1 s short of the hour, exactly
    clock.advance(3599)
    assert me(client, body["access_token"]).status_code == 200
    clock.advance(2)
    expired = me(client, body["access_token"])
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    renewed = refresh(client, key, body["refresh_token"])
    assert renewed.status_code == 200
    assert renewed.json()["expires_in"] == 3600
    assert me(client, renewed.json()["access_token"]).status_code == 200


def test_refresh_for_a_deactivated_key_fails(client, directory: Directory, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    directory.set_key_state(key.client_id, "inactive")
    assert refresh(client, key, body["refresh_token"]).json() == UNKNOWN_CLIENT


def test_refresh_for_a_revoked_token_fails(client, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user)
    assert (
        client.delete(TOKEN, headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200
    )
    assert refresh(client, key, body["refresh_token"]).json() == {
        "error": "invalid_request",
        "error_description": "refresh_token not found",
    }


# ---------------------------------------------------------------- the response


def test_token_response_fields(client, key: Key, user: Person) -> None:
    response = exchange(client, key, get_code(client, key, user))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "user", "canvas_region", "refresh_token", "expires_in"}
    assert SLUG.fullmatch(body["access_token"])
    assert SLUG.fullmatch(body["refresh_token"])
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["canvas_region"] == "unknown"
    assert body["user"] == {
        "id": user.id,
        "name": user.name,
        "global_id": str(10_000_000_000_000 + user.id),
        "effective_locale": "en",
        "fake_student": False,
    }


def test_effective_locale_follows_the_user(client, directory: Directory, key: Key) -> None:
    user = directory.user(locale="fr")
    assert issue_tokens(client, key, user)["user"]["effective_locale"] == "fr"


def test_userinfo_token_shows_no_token(client, directory: Directory, key: Key, user: Person) -> None:
    body = issue_tokens(client, key, user, scope="/auth/userinfo")
    assert body["access_token"] is None
    assert "refresh_token" not in body
    assert body["user"]["id"] == user.id
    assert count(directory, AccessToken, AccessToken.workflow_state == "active") == 1


def test_each_exchange_creates_a_new_token(client, directory: Directory, key: Key, user: Person) -> None:
    first = issue_tokens(client, key, user)
    second = issue_tokens(client, key, user)
    assert first["access_token"] != second["access_token"]
    assert me(client, first["access_token"]).status_code == 200
    assert me(client, second["access_token"]).status_code == 200
    assert tokens_written(directory) == 2


def test_replace_tokens_revokes_earlier_tokens(client, directory: Directory, key: Key, user: Person) -> None:
    other_key = directory.key(name="Other")
    earlier = issue_tokens(client, key, user)
    elsewhere = issue_tokens(client, other_key, user)
    code = get_code(client, key, user)
    replacing = exchange(client, key, code, replace_tokens="1")
    assert replacing.status_code == 200
    assert me(client, earlier["access_token"]).status_code == 401
    assert me(client, replacing.json()["access_token"]).status_code == 200
    assert me(client, elsewhere["access_token"]).status_code == 200


def test_replace_tokens_zero_keeps_earlier_tokens(client, key: Key, user: Person) -> None:
    earlier = issue_tokens(client, key, user)
    assert exchange(client, key, get_code(client, key, user), replace_tokens="0").status_code == 200
    assert me(client, earlier["access_token"]).status_code == 200


def test_tokens_are_stored_as_digests_with_a_hint(
    client, directory: Directory, key: Key, user: Person
) -> None:
    body = issue_tokens(client, key, user, purpose="My Phone")
    rows = directory.query(
        select(
            AccessToken.token_digest, AccessToken.refresh_digest, AccessToken.token_hint, AccessToken.purpose
        )
    )
    assert len(rows) == 1
    token_digest, refresh_digest, hint, purpose = rows[0]
    assert body["access_token"] not in (token_digest, refresh_digest)
    assert hint == body["access_token"][:5]
    assert purpose == "My Phone"


def test_purpose_defaults_to_the_key_name(client, directory: Directory, key: Key, user: Person) -> None:
    issue_tokens(client, key, user)
    assert directory.query(select(AccessToken.purpose)) == [("Test Integration",)]


# ---------------------------------------------------------------- client_credentials


def test_client_credentials_is_refused_for_ordinary_keys(client, directory: Directory, key: Key) -> None:
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "scope": "x",
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "assertion method not supported for this grant_type",
    }
    assert tokens_written(directory) == 0


def test_client_credentials_checks_the_secret_first(client, key: Key) -> None:
    response = client.post(
        TOKEN, data={"grant_type": "client_credentials", "client_id": key.client_id, "client_secret": "no"}
    )
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


# ---------------------------------------------------------------- bad parameters write nothing


def test_repeated_parameter_is_refused_and_writes_nothing(
    client, directory: Directory, key: Key, user: Person
) -> None:
    code = get_code(client, key, user)
    fields = {
        "grant_type": "authorization_code",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "code": code,
        "redirect_uri": key.redirect_uris[0],
        "code_verifier": "v",
        "replace_tokens": "1",
    }
    for name in fields:
        pairs = [
            (k, v) for k, v in fields.items() if k not in ("code_verifier", "replace_tokens") or k == name
        ]
        pairs.append((name, fields[name]))
        body = "&".join(f"{k}={v}" for k, v in pairs)
        response = client.post(
            TOKEN, content=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 400, name
        assert response.json() == {
            "error": "invalid_request",
            "error_description": f"the {name} parameter was given more than once",
        }
    assert tokens_written(directory) == 0
    assert count(directory, AuthorizationCode, AuthorizationCode.redeemed_at.is_not(None)) == 0
    assert exchange(client, key, code).status_code == 200


def test_parameter_in_both_query_and_body_is_repeated(client, key: Key, user: Person) -> None:
    code = get_code(client, key, user)
    response = client.post(
        TOKEN + f"?code={code}",
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_oversized_parameter_is_refused_and_writes_nothing(
    client, directory: Directory, key: Key, user: Person
) -> None:
    code = get_code(client, key, user)
    for name in ["code", "redirect_uri", "client_id", "client_secret", "refresh_token", "code_verifier"]:
        data = {
            "grant_type": "refresh_token" if name == "refresh_token" else "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": key.redirect_uris[0],
            "refresh_token": "r",
        }
        data[name] = "a" * 4097
        response = client.post(TOKEN, data=data)
        assert response.status_code == 400, name
        assert response.json() == {
            "error": "invalid_request",
            "error_description": f"the {name} parameter is too long",
        }
    assert tokens_written(directory) == 0
    assert exchange(client, key, code).status_code == 200


def test_failed_requests_write_nothing(client, directory: Directory, key: Key, user: Person) -> None:
    other = directory.key(name="Other")
    code = get_code(client, key, user)
    verifier, challenge = pkce_pair()
    pkce_code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    before = directory.query(
        select(AuthorizationCode.id, AuthorizationCode.redeemed_at).order_by(AuthorizationCode.id)
    )
    failures = [
        exchange(client, other, code, redirect_uri=key.redirect_uris[0]),
        exchange(client, key, code, redirect_uri="https://app.example.com/other"),
        exchange(client, Key(key.client_id, "wrong", key.redirect_uris), code),
        exchange(client, key, pkce_code, code_verifier="wrong-verifier-wrong-verifier-wrong-verifier"),
        exchange(client, key, pkce_code),
        refresh(client, key, "unknown"),
    ]
    assert all(response.status_code in (400, 401) for response in failures)
    assert tokens_written(directory) == 0
    after = directory.query(
        select(AuthorizationCode.id, AuthorizationCode.redeemed_at).order_by(AuthorizationCode.id)
    )
    assert after == before
    assert exchange(client, key, code).status_code == 200
    assert exchange(client, key, pkce_code, code_verifier=verifier).status_code == 200
