"""POST /ids/auth/login: the success shape (spec A2) and every error row (spec A5, issue 3)."""

from __future__ import annotations

import base64
import hmac
import re
import uuid
from datetime import timedelta

import pytest

from lmsauth.core import clock
from lmsauth.core.errors import BadParameters
from lmsauth.identity.login import basic_credentials
from tests.identity.helpers import Credentials, basic, login, make_client, revoke

SCOPE = re.compile(r"^dap principal:(\S+) partner:(\S*) region:(\S+)$")


def assert_envelope(response, status: int, error_type: str) -> str:
    """Exactly ``{"error": {"type", "uuid", "message"}}``, as the dap client decodes strictly."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"type", "uuid", "message"}
    assert body["error"]["type"] == error_type
    assert uuid.UUID(body["error"]["uuid"]).version == 4
    assert body["error"]["message"]
    return str(body["error"]["message"])


def test_login_returns_exactly_the_four_members(client, settings) -> None:
    credentials = make_client(settings, principal="inst-42", region="eu-central-1")
    response = login(client, credentials)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 3599 and type(body["expires_in"]) is int
    assert body["token_type"] == "bearer"
    assert body["scope"] == "dap principal:inst-42 partner: region:eu-central-1"
    assert SCOPE.match(body["scope"])
    assert body["access_token"].count(".") == 2
    assert login(client, credentials).json()["access_token"] != body["access_token"]  # fresh each time
    with_partner = make_client(settings, principal="inst-7", partner="partner-9")
    assert login(client, with_partner).json()["scope"] == (
        "dap principal:inst-7 partner:partner-9 region:us-east-1"
    )


def test_client_id_is_region_hash_uuid(settings) -> None:
    credentials = make_client(settings, region="ap-southeast-2")
    region, _, rest = credentials.client_id.partition("#")
    assert region == "ap-southeast-2"
    assert uuid.UUID(rest).version == 4
    assert len(credentials.client_secret) >= 40


def test_curl_style_form_body_and_json_body_both_work(client, settings) -> None:
    credentials = make_client(settings)
    auth = (credentials.client_id, credentials.client_secret)
    form = client.post(
        "/ids/auth/login",
        content=b"grant_type=client_credentials",
        auth=auth,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200, form.text
    as_json = client.post("/ids/auth/login", json={"grant_type": "client_credentials"}, auth=auth)
    assert as_json.status_code == 200, as_json.text


# ---------------------------------------------------------------------------- 401 rows


def test_wrong_secret_is_401(client, settings) -> None:
    credentials = make_client(settings)
    response = login(client, Credentials(credentials.client_id, credentials.client_secret + "x"))
    assert assert_envelope(response, 401, "AuthenticationError") == "Invalid client ID or secret."
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_unknown_client_is_the_same_401_as_a_wrong_secret(client, settings) -> None:
    credentials = make_client(settings)
    wrong_secret = login(client, Credentials(credentials.client_id, "not-the-secret"))
    unknown_id = login(client, Credentials("us-east-1#" + str(uuid.uuid4()), credentials.client_secret))
    assert_envelope(unknown_id, 401, "AuthenticationError")
    first, second = wrong_secret.json()["error"], unknown_id.json()["error"]
    assert first["message"] == second["message"] and first["type"] == second["type"]
    assert first["uuid"] != second["uuid"]
    assert dict(wrong_secret.headers).keys() == dict(unknown_id.headers).keys()


def test_an_unknown_id_costs_the_same_comparison_as_a_wrong_secret(client, settings, monkeypatch) -> None:
    """Constant time: the standard library's constant-time comparison runs on the same inputs'
    shapes whichever way the credentials are wrong, and the answers cannot be told apart."""
    credentials = make_client(settings)
    compared: list[tuple[int, int]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes | str, b: bytes | str) -> bool:
        compared.append((len(a), len(b)))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    unknown = login(client, Credentials("us-east-1#" + str(uuid.uuid4()), "guess"))
    on_unknown, compared[:] = list(compared), []
    wrong = login(client, Credentials(credentials.client_id, "guess"))
    on_wrong = list(compared)
    assert on_unknown == on_wrong
    assert (64, 64) in on_wrong  # the presented secret's SHA-256 against a stored one
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["error"]["message"] == wrong.json()["error"]["message"]
    assert unknown.json()["error"]["type"] == wrong.json()["error"]["type"]
    assert dict(unknown.headers).keys() == dict(wrong.headers).keys()


def test_revoked_client_is_401(client, settings) -> None:
    credentials = make_client(settings)
    revoke(settings, credentials.client_id)
    assert assert_envelope(login(client, credentials), 401, "AuthenticationError") == (
        "This client has been revoked."
    )
    # Without the secret, a revoked client looks like any other failure.
    wrong = login(client, Credentials(credentials.client_id, "guess"))
    assert assert_envelope(wrong, 401, "AuthenticationError") == "Invalid client ID or secret."


def test_expired_client_is_401(client, settings) -> None:
    credentials = make_client(settings, expires_in_days=1)
    clock.advance(timedelta(days=1).total_seconds() - 5)
    assert login(client, credentials).status_code == 200
    clock.advance(5)
    assert assert_envelope(login(client, credentials), 401, "AuthenticationError") == (
        "This client has expired."
    )


# ---------------------------------------------------------------------------- 400 rows


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


MALFORMED_AUTHORIZATION = {
    "no header": None,
    "empty header": "",
    "bearer scheme": "Bearer abc.def.ghi",
    "basic without credentials": "Basic",
    "bad base64": "Basic !!!not-base64!!!",
    "bad base64 padding": "Basic " + _b64(b"us-east-1#x:secrets!").rstrip("="),
    "not utf-8": "Basic " + _b64(b"us-east-1#x:\xff\xfe"),
    "no colon": "Basic " + _b64(b"us-east-1#x-and-secret"),
    "empty id": "Basic " + _b64(b":secret"),
    "empty secret": "Basic " + _b64(b"us-east-1#x:"),
    "too long": "Basic " + _b64(b"a:" + b"s" * 5000),
}


def test_malformed_authorization_is_400(client, settings) -> None:
    make_client(settings)
    for case, header in MALFORMED_AUTHORIZATION.items():
        headers = {} if header is None else {"Authorization": header}
        response = client.post("/ids/auth/login", data={"grant_type": "client_credentials"}, headers=headers)
        assert response.status_code == 400, case
        assert_envelope(response, 400, "BadRequestError")


MALFORMED_BODY = {
    "no grant_type": {"data": {}},
    "empty body": {"content": b""},
    "wrong grant_type": {"data": {"grant_type": "password"}},
    "authorization_code": {"data": {"grant_type": "authorization_code"}},
    "repeated grant_type": {"content": b"grant_type=client_credentials&grant_type=client_credentials"},
    "unsupported content type": {
        "content": b"grant_type=client_credentials",
        "headers": {"Content-Type": "text/plain"},
    },
    "not utf-8": {"content": b"grant_type=\xff"},
    "json array": {"content": b"[]", "headers": {"Content-Type": "application/json"}},
}


def test_malformed_body_is_400_even_with_good_credentials(client, settings) -> None:
    credentials = make_client(settings)
    for case, request_body in MALFORMED_BODY.items():
        headers = {
            "Authorization": basic(credentials.client_id, credentials.client_secret),
            "Content-Type": "application/x-www-form-urlencoded",
            **request_body.get("headers", {}),
        }
        body = {name: value for name, value in request_body.items() if name != "headers"}
        response = client.post("/ids/auth/login", headers=headers, **body)
        assert response.status_code == 400, case
        assert_envelope(response, 400, "BadRequestError")


def test_grant_type_in_the_query_string_does_not_count(client, settings) -> None:
    credentials = make_client(settings)
    response = client.post(
        "/ids/auth/login?grant_type=client_credentials",
        headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
    )
    assert_envelope(response, 400, "BadRequestError")


def test_other_methods_and_paths_answer_in_the_envelope(client) -> None:
    response = client.get("/ids/auth/login")
    assert_envelope(response, 405, "MethodNotAllowedError")
    assert response.headers["allow"] == "POST"
    assert_envelope(client.post("/ids/auth/logout"), 404, "NotFoundError")


# ---------------------------------------------------------------------------- Basic parsing


def test_basic_splits_at_the_first_colon_and_keeps_the_hash() -> None:
    header = "Basic " + _b64(b"us-east-1#abc-123:se:cr#et")
    assert basic_credentials(header) == ("us-east-1#abc-123", "se:cr#et")


def test_basic_matches_the_wire_example_of_spec_a1() -> None:
    assert basic_credentials("Basic dXMtZWFzdC0xI2FiYy0xMjM6czNjcjN0") == ("us-east-1#abc-123", "s3cr3t")
    assert basic_credentials("basic dXMtZWFzdC0xI2FiYy0xMjM6czNjcjN0") == ("us-east-1#abc-123", "s3cr3t")


def test_basic_accepts_non_ascii_secrets_as_utf8() -> None:
    assert basic_credentials("Basic " + _b64("id:pässwörd".encode())) == ("id", "pässwörd")


@pytest.mark.parametrize("header", [None, "Digest abc", "Basic ###"])
def test_basic_refuses_what_is_not_basic(header: str | None) -> None:
    with pytest.raises(BadParameters):
        basic_credentials(header)
