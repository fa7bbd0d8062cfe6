"""The DAP Query API over HTTP: table list, schema, and every error row (spec B2, B3)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from lmsauth.core import clock
from tests.identity.helpers import access_token, make_client, revoke

TABLES = ["access_tokens", "accounts", "courses", "developer_keys", "enrollments", "pseudonyms", "users"]


@pytest.fixture
def token(client, settings) -> str:
    return access_token(client, make_client(settings))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, error_type: str, **extra: str) -> dict:
    """The envelope with exactly the members the dap client needs for ``error_type``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"type", "uuid", "message", *extra}
    assert error["type"] == error_type
    assert uuid.UUID(error["uuid"]).version == 4
    assert {name: error[name] for name in extra} == extra
    return error


def test_list_tables_and_every_schema(client, token) -> None:
    response = client.get("/dap/query/canvas/table", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"tables": TABLES}
    for table in TABLES:
        response = client.get(f"/dap/query/canvas/table/{table}/schema", headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"schema", "version"}
        assert body["version"] == 1 and type(body["version"]) is int
        assert body["schema"]["title"] == f"canvas.{table}"
        assert set(body["schema"]["properties"]) == {"meta", "key", "value"}


def test_token_headers_legacy_x_instauth_and_case_insensitive_bearer(client, token) -> None:
    assert client.get("/dap/query/canvas/table", headers={"x-instauth": token}).status_code == 200
    both = {"Authorization": "Bearer not-a-token", "x-instauth": token}
    assert_error(client.get("/dap/query/canvas/table", headers=both), 401, "AuthenticationError")
    lower = {"Authorization": f"bearer {token}"}
    assert client.get("/dap/query/canvas/table", headers=lower).status_code == 200


# ---------------------------------------------------------------------------- 404 rows


def test_unknown_names_are_404_with_id_and_kind(client, token) -> None:
    for path in ("/dap/query/mastery/table", "/dap/query/mastery/table/users/schema"):
        assert_error(
            client.get(path, headers=bearer(token)), 404, "NotFoundError", id="mastery", kind="namespace"
        )
    response = client.get("/dap/query/canvas/table/submissions/schema", headers=bearer(token))
    error = assert_error(response, 404, "NotFoundError", id="submissions", kind="table")
    assert "submissions" in error["message"]
    # Our ``logins`` table is Canvas Data 2's ``pseudonyms``; the model name is not a table.
    response = client.get("/dap/query/canvas/table/logins/schema", headers=bearer(token))
    assert_error(response, 404, "NotFoundError", id="logins", kind="table")
    response = client.get("/dap/query/canvas/tables", headers=bearer(token))
    assert_error(response, 404, "NotFoundError", id="/dap/query/canvas/tables", kind="endpoint")


def test_wrong_method_is_405_in_the_envelope(client, token) -> None:
    response = client.post("/dap/query/canvas/table", headers=bearer(token))
    assert_error(response, 405, "MethodNotAllowedError")
    assert response.headers["allow"] == "GET"
    assert_error(client.delete("/dap/query/canvas/table/users/schema"), 405, "MethodNotAllowedError")


# ---------------------------------------------------------------------------- 401 rows


def test_missing_token_is_401(client) -> None:
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXM6cw=="},
    ):
        for path in ("/dap/query/canvas/table", "/dap/query/canvas/table/users/schema"):
            response = client.get(path, headers=headers)
            error = assert_error(response, 401, "AuthenticationError")
            assert error["message"].startswith("Missing access token"), headers
            assert response.headers["www-authenticate"].startswith("Bearer ")


def test_authentication_comes_before_not_found(client) -> None:
    """Without a token nobody learns which namespaces or tables exist."""
    assert_error(client.get("/dap/query/nope/table"), 401, "AuthenticationError")
    assert_error(client.get("/dap/query/canvas/table/nope/schema"), 401, "AuthenticationError")


def test_invalid_token_is_401(client) -> None:
    error = assert_error(
        client.get("/dap/query/canvas/table", headers=bearer("abc")), 401, "AuthenticationError"
    )
    assert error["message"] == "Invalid access token."


def test_expired_token_is_401(client, token) -> None:
    clock.advance(3599)
    error = assert_error(
        client.get("/dap/query/canvas/table/users/schema", headers=bearer(token)), 401, "AuthenticationError"
    )
    assert error["message"] == "Access token has expired."


def test_revoking_the_client_stops_its_live_tokens(client, settings) -> None:
    credentials = make_client(settings)
    token = access_token(client, credentials)
    assert client.get("/dap/query/canvas/table", headers=bearer(token)).status_code == 200
    revoke(settings, credentials.client_id)
    error = assert_error(
        client.get("/dap/query/canvas/table", headers=bearer(token)), 401, "AuthenticationError"
    )
    assert error["message"] == "The client of this access token is no longer active."


def test_client_expiry_stops_its_live_tokens(client, settings) -> None:
    credentials = make_client(settings, expires_in_days=1)
    clock.advance(timedelta(days=1).total_seconds() - 600)
    token = access_token(client, credentials)  # valid for another hour, the client for 10 minutes
    assert client.get("/dap/query/canvas/table", headers=bearer(token)).status_code == 200
    clock.advance(600)
    assert_error(client.get("/dap/query/canvas/table", headers=bearer(token)), 401, "AuthenticationError")


def test_token_from_another_deployment_is_401(client, settings, tmp_path) -> None:
    """Same database and keys but another public URL: ``iss`` and ``aud`` no longer match."""
    from starlette.testclient import TestClient

    from lmsauth.app import create_app

    other = settings.model_copy(update={"public_url": "https://elsewhere.example"})
    with TestClient(create_app(other), base_url="https://elsewhere.example") as elsewhere:
        foreign = access_token(elsewhere, make_client(settings))
        assert elsewhere.get("/dap/query/canvas/table", headers=bearer(foreign)).status_code == 200
    assert_error(client.get("/dap/query/canvas/table", headers=bearer(foreign)), 401, "AuthenticationError")
