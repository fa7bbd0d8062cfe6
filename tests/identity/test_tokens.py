"""The IDS access token: an RS256 JWT that verifies against our published JWKS with PyJWT,
and that nothing else passes for (another key, ``alg: none``, HS256 confusion, expiry)."""

from __future__ import annotations

import base64
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lmsauth.core import clock
from lmsauth.identity import tokens
from tests.identity.helpers import access_token, make_client

JWKS_PATH = "/ids/.well-known/jwks.json"
CLAIMS = {"iss", "sub", "aud", "iat", "exp", "jti", "scope", "service", "principal", "partner", "region"}


def published_key(client, token: str):
    jwks = client.get(JWKS_PATH)
    assert jwks.status_code == 200
    assert "max-age" in jwks.headers["cache-control"]
    return jwt.PyJWKSet.from_dict(jwks.json())[jwt.get_unverified_header(token)["kid"]]


def test_token_verifies_with_pyjwt_against_the_published_jwks(client, settings) -> None:
    credentials = make_client(settings, principal="inst-5", partner="p-1", region="ca-central-1")
    before = clock.timestamp()
    token = access_token(client, credentials)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "at+jwt" and header["kid"]
    claims = jwt.decode(
        token,
        published_key(client, token),
        algorithms=["RS256"],
        audience="http://testserver/dap",
        issuer="http://testserver/ids",
    )
    assert set(claims) == CLAIMS
    assert claims["sub"] == credentials.client_id
    assert claims["scope"] == "dap principal:inst-5 partner:p-1 region:ca-central-1"
    assert (claims["service"], claims["principal"], claims["partner"], claims["region"]) == (
        "dap",
        "inst-5",
        "p-1",
        "ca-central-1",
    )
    assert before <= claims["iat"] <= clock.timestamp()
    assert claims["exp"] - claims["iat"] == 3599
    assert uuid.UUID(claims["jti"]).version == 4


def test_partner_claim_is_null_without_a_partner(client, settings) -> None:
    token = access_token(client, make_client(settings))
    assert jwt.decode(token, options={"verify_signature": False})["partner"] is None


def test_live_jwks_with_pyjwkclient(live_server) -> None:
    """The way a third party verifies: PyJWKClient fetches our key set over HTTP."""
    import requests

    credentials = make_client(live_server.settings)
    response = requests.post(
        f"{live_server.url}/ids/auth/login",
        auth=(credentials.client_id, credentials.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    token = response.json()["access_token"]
    key = jwt.PyJWKClient(f"{live_server.url}{JWKS_PATH}", timeout=10).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=f"{live_server.url}/dap")
    assert claims["sub"] == credentials.client_id


# ---------------------------------------------------------------------------- forgeries


def _segment(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_claims(token: str, **changes) -> dict:
    return {**jwt.decode(token, options={"verify_signature": False}), **changes}


def dap_status(client, token: str) -> int:
    response = client.get("/dap/query/canvas/table", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        assert response.json()["error"]["type"] == "AuthenticationError"
    return response.status_code


def test_the_genuine_token_opens_dap(client, settings) -> None:
    assert dap_status(client, access_token(client, make_client(settings))) == 200


def test_token_signed_by_another_key_is_refused(client, settings) -> None:
    token = access_token(client, make_client(settings))
    header = jwt.get_unverified_header(token)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(forged_claims(token), other, algorithm="RS256", headers=header)
    assert dap_status(client, forged) == 401
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            forged, published_key(client, token), algorithms=["RS256"], audience="http://testserver/dap"
        )


def test_alg_none_is_refused(client, settings) -> None:
    token = access_token(client, make_client(settings))
    header = {**jwt.get_unverified_header(token), "alg": "none"}
    unsigned = f"{_segment(header)}.{_segment(forged_claims(token))}."
    assert dap_status(client, unsigned) == 401


def test_hs256_with_the_public_key_as_secret_is_refused(client, settings) -> None:
    """Algorithm confusion (RFC 8725 2.1): the public key must not work as an HMAC secret."""
    token = access_token(client, make_client(settings))
    public_pem = published_key(client, token).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {**jwt.get_unverified_header(token), "alg": "HS256"}
    signing_input = f"{_segment(header)}.{_segment(forged_claims(token))}"
    import hashlib
    import hmac

    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    assert dap_status(client, forged) == 401


def test_expired_token_is_refused_at_exp(client, settings) -> None:
    token = access_token(client, make_client(settings))
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    clock.advance(exp - clock.timestamp() - 2)
    assert dap_status(client, token) == 200
    clock.advance(2)
    response = client.get("/dap/query/canvas/table", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Access token has expired."


def test_claims_changed_under_a_genuine_signature_are_refused(client, settings) -> None:
    token = access_token(client, make_client(settings))
    header, _, signature = token.split(".")
    tampered = f"{header}.{_segment(forged_claims(token, exp=clock.timestamp() + 10**6))}.{signature}"
    assert dap_status(client, tampered) == 401


WRONG_CLAIMS = {
    "aud": {"aud": "http://testserver/other"},
    "iss": {"iss": "http://elsewhere/ids"},
    "service": {"service": "other"},
    "exp as a string": {"exp": "9999999999"},
    "sub not text": {"sub": 12},
}


def test_our_own_key_signing_wrong_claims_is_refused(client, settings) -> None:
    """Even a token our key signed is refused when it was not made for DAP on this server."""
    token = access_token(client, make_client(settings))
    keyring = client.app.state.keyring
    for case, change in WRONG_CLAIMS.items():
        forged = keyring.sign(forged_claims(token, **change), headers={"typ": "at+jwt"})
        assert dap_status(client, forged) == 401, case


def test_our_own_key_signing_another_token_type_is_refused(client, settings) -> None:
    token = access_token(client, make_client(settings))
    keyring = client.app.state.keyring
    assert dap_status(client, keyring.sign(forged_claims(token))) == 401  # typ JWT, not at+jwt
    missing_jti = {k: v for k, v in forged_claims(token).items() if k != "jti"}
    assert dap_status(client, keyring.sign(missing_jti, headers={"typ": "at+jwt"})) == 401


def test_garbage_tokens_are_refused(client) -> None:
    for garbage in ("abc", "a.b.c", "x" * 5000, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"):
        assert dap_status(client, garbage) == 401, garbage


def test_scope_string_has_the_documented_form() -> None:
    assert tokens.scope_of("dap", "P", "Q", "R") == "dap principal:P partner:Q region:R"
    assert tokens.scope_of("dap", "P", None, "R") == "dap principal:P partner: region:R"
