"""What clients discover without credentials: the JWKS (spec 8) and RFC 8414 metadata."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import rsa


def b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def test_jwks(client) -> None:
    response = client.get("/login/oauth2/jwks")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "max-age=864000"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"keys"}
    assert 1 <= len(body["keys"]) <= 3
    for jwk in body["keys"]:
        assert jwk["kty"] == "RSA"
        assert jwk["alg"] == "RS256"
        assert jwk["use"] == "sig"
        assert "d" not in jwk and "p" not in jwk and "q" not in jwk  # public parts only
        match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)_(.+)", jwk["kid"])
        assert match, jwk["kid"]
        datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        uuid.UUID(match.group(2))
        public = rsa.RSAPublicNumbers(b64url_int(jwk["e"]), b64url_int(jwk["n"])).public_key()
        assert public.key_size == 2048


def test_jwks_needs_no_credentials_and_ignores_bad_ones(client) -> None:
    response = client.get("/login/oauth2/jwks", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
    assert response.json()["keys"]


def test_jwks_lists_a_rotated_key_next_to_the_old_one(client) -> None:
    before = {jwk["kid"] for jwk in client.get("/login/oauth2/jwks").json()["keys"]}
    assert client.portal is not None
    new_kid = client.portal.call(client.app.state.keyring.rotate)
    after = {jwk["kid"] for jwk in client.get("/login/oauth2/jwks").json()["keys"]}
    assert after == before | {new_kid}


def test_authorization_server_metadata(client, settings) -> None:
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    body = response.json()
    base = settings.public_url
    assert body["issuer"] == base
    assert body["authorization_endpoint"] == f"{base}/login/oauth2/auth"
    assert body["token_endpoint"] == f"{base}/login/oauth2/token"
    assert body["jwks_uri"] == f"{base}/login/oauth2/jwks"
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert set(body["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert set(body["token_endpoint_auth_methods_supported"]) == {
        "client_secret_post",
        "client_secret_basic",
        "none",
    }
    assert body["prompt_values_supported"] == ["none", "login"]


def test_metadata_endpoints_are_served_where_it_says(client, settings) -> None:
    body = client.get("/.well-known/oauth-authorization-server").json()
    # Each answers as itself: the bare endpoints refuse the missing parameters in their own way.
    expected = {
        "authorization_endpoint": (401, {"error": "invalid_client", "error_description": "unknown client"}),
        "token_endpoint": (
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "The grant_type you requested is not currently supported",
            },
        ),
    }
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        path = body[name].removeprefix(settings.public_url)
        assert path.startswith("/")
        response = client.get(path) if name != "token_endpoint" else client.post(path)
        if name == "jwks_uri":
            assert response.status_code == 200, response.text
            assert response.json()["keys"], response.text
        else:
            assert (response.status_code, response.json()) == expected[name]


def test_metadata_follows_the_public_url(app_client) -> None:
    browser = app_client(public_url="https://canvas.example.edu")
    body = browser.get("/.well-known/oauth-authorization-server").json()
    assert body["issuer"] == "https://canvas.example.edu"
    assert body["token_endpoint"] == "https://canvas.example.edu/login/oauth2/token"
