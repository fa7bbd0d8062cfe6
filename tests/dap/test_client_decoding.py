"""Every reply we send, decoded in-process by the dap client's own strict deserializer.

The subprocess tests prove the happy path end to end; these prove each body, error ones
included, decodes to the class we meant (spec B3): an extra or missing member would turn an
``AuthenticationError`` into a bare ``ServerError``, a ``NotFoundError`` into a fatal one.
"""

from __future__ import annotations

from dap.api import AccessToken, DAPSession
from dap.dap_error import AuthenticationError, NotFoundError, ProcessingError
from dap.dap_types import TableList, TokenProperties, VersionedSchema
from strong_typing.serialization import json_to_object

from tests.identity.helpers import Credentials, login, make_client

TABLES = ["access_tokens", "accounts", "courses", "developer_keys", "enrollments", "pseudonyms", "users"]


def decode_error(response, status: int):
    """What ``DAPSession._process`` raises for an error reply (it never reads ``self``), which
    must have come with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return DAPSession._map_to_error_type(None, response.status_code, response.json())


def test_success_bodies_decode(client, settings) -> None:
    response = login(client, make_client(settings))
    properties = json_to_object(TokenProperties, response.json())
    token = AccessToken(properties.access_token)
    assert not token.is_expiring()  # the client will not log in again for ~55 minutes
    headers = {"Authorization": f"Bearer {properties.access_token}"}
    listed = json_to_object(TableList, client.get("/dap/query/canvas/table", headers=headers).json())
    assert listed.tables == TABLES
    for table in TABLES:
        body = client.get(f"/dap/query/canvas/table/{table}/schema", headers=headers).json()
        assert json_to_object(VersionedSchema, body).version == 1


def test_error_bodies_decode_to_the_intended_classes(client, settings) -> None:
    credentials = make_client(settings)
    bad_secret = decode_error(login(client, Credentials(credentials.client_id, "nope")), 401)
    assert type(bad_secret) is AuthenticationError
    assert bad_secret.message == "Invalid client ID or secret."

    malformed = decode_error(client.post("/ids/auth/login", data={"grant_type": "password"}), 400)
    assert type(malformed) is ProcessingError and "Authorization" in malformed.message

    assert type(decode_error(client.get("/dap/query/canvas/table"), 401)) is AuthenticationError

    token = login(client, credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    missing_table = decode_error(client.get("/dap/query/canvas/table/grades/schema", headers=headers), 404)
    assert type(missing_table) is NotFoundError
    assert (missing_table.kind, missing_table.id) == ("table", "grades")
    missing_namespace = decode_error(client.get("/dap/query/mastery/table", headers=headers), 404)
    assert type(missing_namespace) is NotFoundError and missing_namespace.kind == "namespace"

    wrong_method = decode_error(client.post("/dap/query/canvas/table", headers=headers), 405)
    assert type(wrong_method) is ProcessingError
    assert wrong_method.message == "Use GET."
