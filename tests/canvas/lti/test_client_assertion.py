"""``client_credentials`` with a client assertion (spec canvas_oauth2.md 5.6, asymmetric;
lti13.md 5): pylti1p3's ``ServiceConnector`` buys a token, and every rule of the assertion
is held, message by message."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from pylti1p3.exception import LtiServiceException
from pylti1p3.service_connector import ServiceConnector

from lmsauth.canvas.lti import tool_keys
from lmsauth.core import clock
from lmsauth.core.network import is_public_address
from tests.canvas.lti.services_support import (
    ALL_SCOPES,
    NRPS_SCOPE,
    SCORE,
    JwksServer,
    LtiWorld,
    assertion,
    registration,
    serve,
    token_form,
    tool_key_pair,
)

AUD = "http://testserver/login/oauth2/token"


def token(client: Any, form: dict[str, str]) -> Any:
    return client.post("/login/oauth2/token", data=form)


def refused(response: Any, status: int, error: str, description: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": error, "error_description": description}


def test_pylti1p3_service_connector_gets_a_token(settings, world: LtiWorld) -> None:
    client_id = world.key()
    with serve(settings) as base:
        connector = ServiceConnector(registration(base, client_id))
        access_token = connector.get_access_token([NRPS_SCOPE, SCORE])
    claims = jwt.decode(access_token, options={"verify_signature": False})
    assert jwt.get_unverified_header(access_token)["alg"] == "HS256"
    assert claims["sub"] == client_id
    assert claims["aud"] == base + "/login/oauth2/token"
    assert claims["scopes"] == " ".join(sorted([NRPS_SCOPE, SCORE]))
    assert claims["exp"] - claims["iat"] == 3600


def test_the_answer_is_canvas_token_json(client, world: LtiWorld) -> None:
    client_id = world.key()
    response = token(client, token_form(assertion(client_id, AUD), [NRPS_SCOPE]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, NRPS_SCOPE)
    assert response.headers["cache-control"] == "no-store"


def test_jwk_url_allowed_by_the_setting(settings, world: LtiWorld, jwks_server: JwksServer) -> None:
    pair = tool_key_pair()
    jwks_server.document = {"keys": [pair.jwk]}
    client_id = world.key(public_jwk_url=jwks_server.url)
    with serve(settings, lti_allow_private_jwk_urls=True) as base:
        assert ServiceConnector(registration(base, client_id)).get_access_token([SCORE])


def test_jwk_url_on_loopback_refused_without_the_setting(settings, world, jwks_server) -> None:
    jwks_server.document = {"keys": [tool_key_pair().jwk]}
    client_id = world.key(public_jwk_url=jwks_server.url)
    with serve(settings) as base, pytest.raises(LtiServiceException) as caught:
        ServiceConnector(registration(base, client_id)).get_access_token([SCORE])
    assert "400" in str(caught.value)
    assert "JWK Error: the JWK URL's host 127.0.0.1 is not a public address" in str(caught.value)
    assert jwks_server.hits == 0


def test_the_emulator_allows_loopback_jwk_urls(settings, world, jwks_server) -> None:
    jwks_server.document = {"keys": [tool_key_pair().jwk]}
    client_id = world.key(public_jwk_url=jwks_server.url)
    with serve(settings, emulator=True) as base:
        assert ServiceConnector(registration(base, client_id)).get_access_token([SCORE])
    assert jwks_server.hits == 1


def test_a_name_that_resolves_to_loopback_is_refused(client, world, jwks_server) -> None:
    client_id = world.key(public_jwk_url=jwks_server.url.replace("127.0.0.1", "localhost"))
    response = token(client, token_form(assertion(client_id, AUD, kid=tool_key_pair().kid), [SCORE]))
    message = "JWK Error: the JWK URL's host localhost is not a public address"
    refused(response, 400, "invalid_request", message)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("not an address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.fixture
def private_ok(app_client):
    return app_client(lti_allow_private_jwk_urls=True)


def test_kid_must_match_a_key_of_the_set(private_ok, world, jwks_server) -> None:
    jwks_server.document = {"keys": [tool_key_pair().jwk]}
    client_id = world.key(public_jwk_url=jwks_server.url)
    for kid in ("another-kid", None):
        response = token(private_ok, token_form(assertion(client_id, AUD, kid=kid), [SCORE]))
        refused(response, 400, "invalid_request", "JWK Error: JSON::JWK::Set::KidNotFound")


def test_jwk_url_that_is_not_json(private_ok, world, jwks_server) -> None:
    jwks_server.raw = b"<html>not json</html>"
    client_id = world.key(public_jwk_url=jwks_server.url)
    response = token(private_ok, token_form(assertion(client_id, AUD, kid=tool_key_pair().kid), [SCORE]))
    refused(response, 400, "invalid_request", "JWK Error: Invalid JSON")


def test_jwk_url_answer_too_large(private_ok, world, jwks_server) -> None:
    jwks_server.document = {"keys": [tool_key_pair().jwk], "padding": "x" * tool_keys.MAX_JWKS_BYTES}
    client_id = world.key(public_jwk_url=jwks_server.url)
    response = token(private_ok, token_form(assertion(client_id, AUD, kid=tool_key_pair().kid), [SCORE]))
    refused(response, 400, "invalid_request", "JWK Error: the JWK Set is larger than 65536 bytes")


def test_jwk_url_redirects_are_not_followed(private_ok, world, jwks_server) -> None:
    jwks_server.status, jwks_server.location = 302, "http://169.254.169.254/latest/meta-data"
    client_id = world.key(public_jwk_url=jwks_server.url)
    response = token(private_ok, token_form(assertion(client_id, AUD, kid=tool_key_pair().kid), [SCORE]))
    refused(response, 400, "invalid_request", "JWK Error: the JWK URL answered 302")


def test_jwk_url_timeout(private_ok, world, jwks_server, monkeypatch) -> None:
    monkeypatch.setattr(tool_keys, "FETCH_TIMEOUT_SECONDS", 0.2)
    jwks_server.delay = 1.0
    jwks_server.document = {"keys": [tool_key_pair().jwk]}
    client_id = world.key(public_jwk_url=jwks_server.url)
    started = time.monotonic()
    response = token(private_ok, token_form(assertion(client_id, AUD, kid=tool_key_pair().kid), [SCORE]))
    assert time.monotonic() - started < 0.9
    refused(response, 400, "invalid_request", "JWK Error: the JWK URL did not answer within 0.2 seconds")


def test_jwk_set_is_cached_and_fetched_again_for_a_new_kid(private_ok, world, jwks_server) -> None:
    old, new = tool_key_pair(), tool_key_pair("rotated")
    jwks_server.document = {"keys": [old.jwk]}
    client_id = world.key(public_jwk_url=jwks_server.url)
    for _ in range(3):
        form = token_form(assertion(client_id, AUD, kid=old.kid), [SCORE])
        assert token(private_ok, form).status_code == 200
    assert jwks_server.hits == 1
    jwks_server.document = {"keys": [new.jwk]}  # the tool rotated its key
    form = token_form(assertion(client_id, AUD, pair=new, kid=new.kid), [SCORE])
    assert token(private_ok, form).status_code == 200
    assert jwks_server.hits == 2


def test_a_wrong_signature(client, world) -> None:
    client_id = world.key()
    form = token_form(assertion(client_id, AUD, pair=tool_key_pair("stranger")), [SCORE])
    refused(token(client, form), 400, "invalid_request", "JWS signature invalid.")


def test_a_symmetric_signature_is_refused(client, world) -> None:
    client_id = world.key()
    now = int(time.time())
    forged = jwt.encode(
        {"iss": client_id, "sub": client_id, "aud": AUD, "iat": now, "exp": now + 60, "jti": "x"},
        "a shared secret nobody agreed on, long enough",
        algorithm="HS256",
    )
    refused(token(client, token_form(forged, [SCORE])), 400, "invalid_request", "JWS signature invalid.")


def test_a_key_without_public_key(client, world) -> None:
    client_id = world.key(inline=False)
    form = token_form(assertion(client_id, AUD), [SCORE])
    refused(token(client, form), 400, "invalid_request", "JWS signature invalid.")


def test_inline_jwk_ignores_the_kid(client, world) -> None:
    client_id = world.key()
    form = token_form(assertion(client_id, AUD, kid="whatever"), [SCORE])
    assert token(client, form).status_code == 200


@pytest.mark.parametrize(
    "aud",
    [
        AUD + "/",
        "https://testserver/login/oauth2/token",
        "http://localhost/login/oauth2/token",
        "http://testserver/login/oauth2/token?x=1",
        ["http://testserver/other"],
        42,
    ],
)
def test_aud_must_be_the_token_url_as_called(client, world, aud: Any) -> None:
    client_id = world.key()
    response = token(client, token_form(assertion(client_id, aud), [SCORE]))
    refused(response, 400, "invalid_request", "the 'aud' is invalid")


def test_aud_may_be_an_array_holding_the_token_url(client, world) -> None:
    client_id = world.key()
    response = token(client, token_form(assertion(client_id, ["https://elsewhere", AUD]), [SCORE]))
    assert response.status_code == 200, response.text


def test_aud_follows_the_host_the_tool_called(app_client, world) -> None:
    client_id = world.key()
    other = app_client(base_url="http://127.0.0.1:9999")
    form = token_form(assertion(client_id, "http://127.0.0.1:9999/login/oauth2/token"), [SCORE])
    response = token(other, form)
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "http://127.0.0.1:9999/login/oauth2/token"


def test_expired_assertion(client, world) -> None:
    client_id = world.key()
    now = int(time.time())
    form = token_form(assertion(client_id, AUD, exp=now - 1, iat=now - 60), [SCORE])
    refused(token(client, form), 400, "invalid_request", "the JWT has expired")


def test_exp_must_be_a_number(client, world) -> None:
    client_id = world.key()
    form = token_form(assertion(client_id, AUD, exp="tomorrow"), [SCORE])
    refused(token(client, form), 400, "invalid_request", "the 'exp' must be a number")


def test_iat_older_than_300_seconds(client, world) -> None:
    client_id = world.key()
    now = int(time.time())
    form = token_form(assertion(client_id, AUD, iat=now - 301, exp=now + 60), [SCORE])
    refused(token(client, form), 400, "invalid_request", "the 'iat' must be less than 300 seconds old")


def test_iat_in_the_future(client, world) -> None:
    client_id = world.key()
    now = int(time.time())
    form = token_form(assertion(client_id, AUD, iat=now + 45, exp=now + 90), [SCORE])
    refused(token(client, form), 400, "invalid_request", "the 'iat' must not be in the future")
    # 30 seconds ahead is still fine.
    ok = token_form(assertion(client_id, AUD, iat=now + 20, exp=now + 90), [SCORE])
    assert token(client, ok).status_code == 200


def test_the_windows_follow_the_server_clock(client, world) -> None:
    client_id = world.key()
    form = token_form(assertion(client_id, AUD), [SCORE])
    clock.advance(120)
    refused(token(client, form), 400, "invalid_request", "the JWT has expired")


def test_missing_claims_and_every_other_fault_in_one_message(client, world) -> None:
    client_id = world.key()
    now = int(time.time())
    form = token_form(assertion(client_id, AUD + "/", drop=("jti", "iss"), exp=now - 10), [SCORE])
    refused(
        token(client, form),
        400,
        "invalid_request",
        "the following assertions are missing: jti,iss | the 'aud' is invalid | the JWT has expired",
    )


def test_jti_is_not_checked_for_replay(client, world) -> None:
    client_id = world.key()
    form = token_form(assertion(client_id, AUD), [SCORE])
    assert token(client, form).status_code == 200
    assert token(client, form).status_code == 200


@pytest.mark.parametrize("sub", ["10000000099999", "not-a-number", None])
def test_unknown_key(client, world, sub: str | None) -> None:
    world.key()
    form = token_form(assertion(sub or "", AUD, drop=("sub",) if sub is None else ()), [SCORE])
    refused(token(client, form), 401, "invalid_client", "unknown client")


def test_not_a_jwt(client) -> None:
    refused(token(client, token_form("not.a.jwt", [SCORE])), 401, "invalid_client", "unknown client")


def test_inactive_key(client, world) -> None:
    client_id = world.key()
    world.set_key("tool", workflow_state="inactive")
    response = token(client, token_form(assertion(client_id, AUD), [SCORE]))
    refused(response, 401, "invalid_client", "unknown client")


def test_scopes_must_be_the_keys(client, world) -> None:
    client_id = world.key(scopes=[SCORE])
    response = token(client, token_form(assertion(client_id, AUD), [SCORE, NRPS_SCOPE]))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["error_description"].endswith(f"not granted: {NRPS_SCOPE}")
    empty = token(client, token_form(assertion(client_id, AUD), []))
    assert empty.json()["error"] == "invalid_scope"


def test_every_scope_of_the_key(client, world) -> None:
    client_id = world.key()
    response = token(client, token_form(assertion(client_id, AUD), ALL_SCOPES))
    assert response.status_code == 200
    assert response.json()["scope"] == " ".join(sorted(ALL_SCOPES))
