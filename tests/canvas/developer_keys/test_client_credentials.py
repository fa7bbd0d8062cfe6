"""``grant_type=client_credentials`` (spec 5.6, symmetric variant): a key with the
``external`` audience buys an RS256 JWT, verified here with PyJWT against the published JWKS;
other keys, missing scopes and scopes beyond the key's are refused."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from lmsauth.canvas.keys.client_credentials import TOKEN_LIFETIME_SECONDS
from lmsauth.core import clock
from tests.canvas.developer_keys.conftest import Caller
from tests.canvas.support import TOKEN

KEYS = "/api/v1/accounts/self/developer_keys"
READ = "url:GET|/api/v1/users/:id"
WRITE = "url:PUT|/api/v1/users/:id"
PUBLIC_URL = "http://testserver"


def make_key(client: Any, admin: Caller, audience: str | None) -> dict[str, Any]:
    data = {"developer_key[name]": "Service", "developer_key[scopes][]": [READ, WRITE]}
    if audience is not None:
        data["developer_key[client_credentials_audience]"] = audience
    response = client.post(KEYS, headers=admin.headers, data=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def grant(client: Any, key: dict[str, Any], **extra: str) -> Any:
    data = {"grant_type": "client_credentials", "client_id": str(key["id"]), "client_secret": key["api_key"]}
    return client.post(TOKEN, data={**data, **extra})


def test_an_external_key_gets_an_rs256_jwt_verifiable_at_the_jwks(client: Any, admin: Caller) -> None:
    key = make_key(client, admin, "external")
    response = grant(client, key, scope=READ)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, READ)

    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256"
    jwks = jwt.PyJWKSet.from_dict(client.get("/login/oauth2/jwks").json())
    signing = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        body["access_token"],
        signing.key,
        algorithms=["RS256"],
        audience=f"{PUBLIC_URL}/login/oauth2/token",
        issuer=PUBLIC_URL,
        options={"verify_exp": False},  # the server's clock may be moved by other tests' fixtures
    )
    assert claims["sub"] == str(key["id"])
    assert claims["scopes"] == READ
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME_SECONDS
    assert abs(claims["iat"] - clock.timestamp()) < 60
    assert len(claims["jti"]) == 36
    assert set(claims["canvas.instructure.com"]) == {"account_uuid"}


def test_every_scope_of_the_key_joined_with_spaces(client: Any, admin: Caller) -> None:
    key = make_key(client, admin, "external")
    body = grant(client, key, scope=f"{READ} {WRITE}").json()
    assert body["scope"] == f"{READ} {WRITE}"
    assert (
        jwt.decode(body["access_token"], options={"verify_signature": False})["scopes"] == f"{READ} {WRITE}"
    )


@pytest.mark.parametrize("audience", [None, "internal"])
def test_a_key_without_the_external_audience_is_refused(
    client: Any, admin: Caller, audience: str | None
) -> None:
    key = make_key(client, admin, audience)
    response = grant(client, key, scope=READ)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "assertion method not supported for this grant_type",
    }


@pytest.mark.parametrize(
    ("scope", "missing"),
    [(f"{READ} url:GET|/api/v1/courses", "url:GET|/api/v1/courses"), (None, "")],
)
def test_scopes_must_be_given_and_within_the_keys(
    client: Any, admin: Caller, scope: str | None, missing: str
) -> None:
    key = make_key(client, admin, "external")
    response = grant(client, key, **({"scope": scope} if scope else {}))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": "A requested scope is invalid, unknown, malformed, or exceeds the scope granted "
        f"by the resource owner. The following scopes were requested, but not granted: {missing}",
    }


def test_the_secret_is_still_checked(client: Any, admin: Caller) -> None:
    key = make_key(client, admin, "external")
    response = grant(client, {**key, "api_key": "x" * 64}, scope=READ)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    deleted = client.delete(f"/api/v1/developer_keys/{key['id']}", headers=admin.headers)
    assert deleted.status_code == 200
    assert grant(client, key, scope=READ).status_code == 401
