"""The Developer Keys API (spec 11.1) and the account binding (spec 2.2), driven with
``requests`` against a live server: every row of 11.1, each permission both ways, and bad
input answered in Canvas's error shape with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select

from lmsauth.canvas.models import AccessToken, DeveloperKey, global_id
from tests.canvas.developer_keys.conftest import Caller, snapshot
from tests.canvas.support import exchange, get_code, me
from tests.conftest import Directory, Key, LiveServer

KEYS = "/api/v1/accounts/self/developer_keys"
CANVAS_UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}
KEY_FIELDS = {
    "id", "name", "created_at", "updated_at", "workflow_state", "is_lti_key", "email", "icon_url",
    "notes", "vendor_code", "account_name", "visible", "scopes", "redirect_uri", "redirect_uris",
    "access_token_count", "last_used_at", "test_cluster_only", "allow_includes", "require_scopes",
    "client_credentials_audience", "api_key", "tool_configuration", "public_jwk", "public_jwk_url",
    "lti_registration", "is_lti_registration", "user_name", "user_id", "unified_tool_id",
}  # fmt: skip
CALLBACK = "https://tool.example/callback"
READ_SCOPE = "url:GET|/api/v1/users/:id"


@pytest.fixture
def http(live_server: LiveServer) -> Any:
    session = requests.Session()

    class Http:
        url = live_server.url

        def call(
            self, method: str, path: str, caller: Caller | None = None, **kwargs: Any
        ) -> requests.Response:
            headers = caller.headers if caller else {}
            return session.request(method, live_server.url + path, headers=headers, timeout=10, **kwargs)

    yield Http()
    session.close()


def create(http: Any, admin: Caller, **fields: Any) -> requests.Response:
    data = {f"developer_key[{name}]": value for name, value in fields.items()}
    response: requests.Response = http.call("POST", KEYS, admin, data=data)
    return response


def test_create_shows_every_field_and_the_secret_and_starts_off(
    http: Any, admin: Caller, directory: Directory
) -> None:
    response = create(
        http,
        admin,
        name="Grading Tool",
        email="dev@tool.example",
        notes="for grades",
        vendor_code="acme",
        icon_url="https://tool.example/icon.png",
        **{"redirect_uris": f"{CALLBACK} https://tool.example/other", "scopes][": READ_SCOPE},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= KEY_FIELDS
    assert body["name"] == "Grading Tool"
    assert body["email"] == "dev@tool.example"
    assert body["notes"] == "for grades"
    assert body["vendor_code"] == "acme"
    assert body["icon_url"] == "https://tool.example/icon.png"
    assert body["redirect_uris"] == [CALLBACK, "https://tool.example/other"]
    assert body["redirect_uri"] is None
    assert body["scopes"] == [READ_SCOPE]
    assert body["workflow_state"] == "active"
    assert body["is_lti_key"] is False
    assert body["tool_configuration"] is None and body["public_jwk"] is None
    assert body["access_token_count"] == 0 and body["last_used_at"] is None
    assert body["account_name"] == "Site Admin"
    assert body["user_id"] == admin.person.id
    assert body["created_at"].endswith("Z")
    assert len(body["api_key"]) == 64
    assert body["developer_key_account_binding"]["workflow_state"] == "off"
    (row,) = directory.query(select(DeveloperKey).where(DeveloperKey.id == body["id"] - global_id(0)))
    assert row[0].binding_state == "off"
    assert body["api_key"] not in (row[0].secret_sealed or "")  # sealed, not stored in clear
    # Shown to admins on every read, as Canvas does.
    listed = http.call("GET", KEYS, admin).json()
    assert [item["api_key"] for item in listed if item["id"] == body["id"]] == [body["api_key"]]


def test_a_key_made_through_the_api_is_off_until_an_admin_turns_it_on(
    http: Any, admin: Caller, client: Any, directory: Directory
) -> None:
    body = create(http, admin, name="New", redirect_uris=CALLBACK).json()
    key = Key(str(body["id"]), body["api_key"], [CALLBACK])
    student = directory.user()
    refused = client.get(
        "/login/oauth2/auth",
        params={"client_id": key.client_id, "response_type": "code", "redirect_uri": CALLBACK},
    )
    assert refused.status_code == 302
    assert "error=unauthorized_client" in refused.headers["location"]

    url = f"{KEYS}/{body['id']}/developer_key_account_bindings"
    turned = http.call("POST", url, admin, data={"developer_key_account_binding[workflow_state]": "on"})
    assert turned.status_code == 200, turned.text
    binding = turned.json()
    assert set(binding) == {
        "id",
        "account_id",
        "developer_key_id",
        "workflow_state",
        "user_id",
        "created_at",
        "updated_at",
    }
    assert binding["workflow_state"] == "on" and binding["developer_key_id"] == body["id"]

    client.cookies.clear()
    tokens = exchange(client, key, get_code(client, key, student))
    assert tokens.status_code == 200, tokens.text
    assert me(client, tokens.json()["access_token"]).status_code == 200

    # Off again ("allow" is not "on" either): the tokens are refused at once.
    for state in ("off", "allow"):
        changed = http.call("POST", url, admin, data={"developer_key_account_binding[workflow_state]": state})
        assert changed.json()["workflow_state"] == state
        assert me(client, tokens.json()["access_token"]).status_code == 401


def test_index_lists_the_accounts_keys_newest_first_and_paginates(
    http: Any, admin: Caller, api_key: Key
) -> None:
    made = [create(http, admin, name=f"Key {n}").json()["id"] for n in range(3)]
    first = http.call("GET", KEYS, admin, params={"per_page": 2})
    assert first.status_code == 200
    assert [item["id"] for item in first.json()] == made[::-1][:2]
    assert 'rel="next"' in first.headers["Link"] and 'rel="last"' in first.headers["Link"]
    rest = http.call("GET", KEYS, admin, params={"per_page": 2, "page": 2}).json()
    assert [item["id"] for item in rest] == [made[0], int(api_key.client_id)]
    # The key the admin's own token came from counts that token.
    assert rest[-1]["access_token_count"] == 1
    assert rest[-1]["last_used_at"] is not None
    assert http.call("GET", KEYS, admin, params={"inherited": "true"}).json() == []


def test_update_fields_and_events(http: Any, admin: Caller) -> None:
    body = create(http, admin, name="Before", scopes=READ_SCOPE).json()
    path = f"/api/v1/developer_keys/{body['id']}"
    changed = http.call(
        "PUT",
        path,
        admin,
        data={
            "developer_key[name]": "After",
            "developer_key[redirect_uris][]": [CALLBACK],
            "developer_key[require_scopes]": "true",
            "developer_key[visible]": "1",
            "developer_key[client_credentials_audience]": "external",
        },
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert (after["name"], after["redirect_uris"], after["require_scopes"], after["visible"]) == (
        "After",
        [CALLBACK],
        True,
        True,
    )
    assert after["client_credentials_audience"] == "external"
    assert after["scopes"] == [READ_SCOPE] and after["api_key"] == body["api_key"]
    off = http.call("PUT", path, admin, data={"developer_key[event]": "deactivate"}).json()
    assert off["workflow_state"] == "inactive"
    on = http.call("PUT", path, admin, data={"developer_key[event]": "activate"}).json()
    assert on["workflow_state"] == "active"


def test_removing_a_scope_destroys_the_keys_tokens_and_adding_one_does_not(
    http: Any, admin: Caller, client: Any, directory: Directory
) -> None:
    body = create(http, admin, name="Scoped", redirect_uris=CALLBACK, scopes=READ_SCOPE).json()
    bind(http, admin, body["id"], "on")
    key = Key(str(body["id"]), body["api_key"], [CALLBACK])
    client.cookies.clear()
    token = exchange(client, key, get_code(client, key, directory.user())).json()["access_token"]
    path = f"/api/v1/developer_keys/{body['id']}"
    more = [READ_SCOPE, "url:GET|/api/v1/courses"]
    added = http.call("PUT", path, admin, data={"developer_key[scopes][]": more})
    assert added.json()["scopes"] == more
    assert me(client, token).status_code == 200
    removed = http.call("PUT", path, admin, data={"developer_key[scopes][]": ["url:GET|/api/v1/courses"]})
    assert removed.status_code == 200
    assert me(client, token).status_code == 401
    states = directory.query(
        select(AccessToken.workflow_state).where(AccessToken.developer_key_id == key_id(body))
    )
    assert states == [("deleted",)]
    # Canvas intersects an update's scopes with the known ones rather than refusing them.
    kept = http.call(
        "PUT", path, admin, data={"developer_key[scopes][]": ["url:GET|/api/v1/courses", "nonsense"]}
    )
    assert kept.json()["scopes"] == ["url:GET|/api/v1/courses"]


def bind(http: Any, admin: Caller, key: Any, state: str) -> requests.Response:
    response: requests.Response = http.call(
        "POST",
        f"{KEYS}/{key}/developer_key_account_bindings",
        admin,
        data={"developer_key_account_binding[workflow_state]": state},
    )
    return response


def key_id(body: dict[str, Any]) -> int:
    return int(body["id"]) - global_id(0)


def test_delete_is_soft_returns_the_key_and_its_tokens_stop(
    http: Any, admin: Caller, client: Any, directory: Directory, api_key: Key
) -> None:
    path = f"/api/v1/developer_keys/{api_key.client_id}"
    deleted = http.call("DELETE", path, admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["workflow_state"] == "deleted"
    assert deleted.json()["id"] == int(api_key.client_id)
    # The admin's own token was of that key: it stops working at once.
    assert http.call("GET", KEYS, admin).status_code == 401
    states = directory.query(
        select(DeveloperKey.workflow_state).where(DeveloperKey.id == key_id(deleted.json()))
    )
    assert states == [("deleted",)]


def test_a_deleted_key_is_not_listed_and_is_gone(http: Any, admin: Caller) -> None:
    body = create(http, admin, name="Doomed").json()
    path = f"/api/v1/developer_keys/{body['id']}"
    assert http.call("DELETE", path, admin).status_code == 200
    assert body["id"] not in [item["id"] for item in http.call("GET", KEYS, admin).json()]
    assert http.call("DELETE", path, admin).status_code == 404
    assert http.call("PUT", path, admin, data={"developer_key[name]": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", KEYS),
        ("POST", KEYS),
        ("PUT", "/api/v1/developer_keys/{id}"),
        ("DELETE", "/api/v1/developer_keys/{id}"),
        ("POST", KEYS + "/{id}/developer_key_account_bindings"),
    ],
)
def test_non_admins_get_canvas_401_and_change_nothing(
    http: Any, admin: Caller, student: Caller, directory: Directory, method: str, path: str
) -> None:
    body = create(http, admin, name="Guarded").json()
    before = snapshot(directory)
    data = {"developer_key[name]": "Taken over", "developer_key_account_binding[workflow_state]": "on"}
    refused = http.call(method, path.format(id=body["id"]), student, data=data)
    assert refused.status_code == 401
    assert refused.json() == CANVAS_UNAUTHORIZED
    assert snapshot(directory) == before
    # Without any token: Canvas's "user authorization required".
    assert http.call(method, path.format(id=body["id"]), data=data).status_code == 401
    assert snapshot(directory) == before


@pytest.mark.parametrize(
    ("fields", "attribute"),
    [
        ({"scopes][": "not-a-scope"}, "scopes"),
        ({"redirect_uris": "not-a-url"}, "redirect_uris"),
        ({"redirect_uri": "/relative"}, "redirect_uri"),
        ({"name": "x" * 256}, "name"),
        ({"client_credentials_audience": "everyone"}, "client_credentials_audience"),
    ],
)
def test_bad_fields_on_create_get_canvas_model_errors_and_change_nothing(
    http: Any, admin: Caller, directory: Directory, fields: dict[str, str], attribute: str
) -> None:
    before = snapshot(directory)
    refused = create(http, admin, **fields)
    assert refused.status_code == 400
    (error,) = refused.json()["errors"][attribute]
    assert set(error) == {"attribute", "type", "message"} and error["attribute"] == attribute
    assert snapshot(directory) == before


def test_a_nameless_key_is_allowed_as_in_canvas(http: Any, admin: Caller) -> None:
    made = http.call("POST", KEYS, admin, data={})
    assert made.status_code == 200
    assert made.json()["name"] is None


def test_bad_updates_change_nothing(http: Any, admin: Caller, directory: Directory) -> None:
    body = create(http, admin, name="Stable", redirect_uris=CALLBACK).json()
    path = f"/api/v1/developer_keys/{body['id']}"
    before = snapshot(directory)
    bad_event = http.call(
        "PUT", path, admin, data={"developer_key[event]": "explode", "developer_key[name]": "x"}
    )
    assert bad_event.status_code == 400
    assert bad_event.json()["errors"][0]["message"]
    bad_uri = http.call(
        "PUT",
        path,
        admin,
        data={"developer_key[event]": "deactivate", "developer_key[redirect_uris]": "nope"},
    )
    assert bad_uri.status_code == 400
    assert "redirect_uris" in bad_uri.json()["errors"]
    for unknown in ("/api/v1/developer_keys/999999", "/api/v1/developer_keys/abc"):
        missing = http.call("PUT", unknown, admin, data={"developer_key[name]": "x"})
        assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
    bad_state = bind(http, admin, body["id"], "sideways")
    assert bad_state.status_code == 400
    assert bad_state.json()["errors"]["workflow_state"][0]["type"] == "inclusion"
    unknown_binding = bind(http, admin, 999999, "on")
    assert unknown_binding.status_code == 404
    assert http.call("GET", "/api/v1/accounts/42/developer_keys", admin).status_code == 404
    assert http.call("GET", KEYS, admin, params={"page": "0"}).status_code == 404
    assert snapshot(directory) == before


def test_the_user_generated_key_of_manual_tokens_is_no_admins_key(
    http: Any, admin: Caller, directory: Directory
) -> None:
    """Manual tokens live on Canvas's default key: it is not listed, changed or deleted here."""
    made = http.call("POST", "/api/v1/users/self/tokens", admin, data={"token[purpose]": "script"})
    assert made.status_code == 200, made.text
    (default,) = directory.query(select(DeveloperKey.id).where(DeveloperKey.is_default.is_(True)))
    listed = [item["id"] for item in http.call("GET", KEYS, admin, params={"per_page": 100}).json()]
    assert global_id(default[0]) not in listed and default[0] not in listed
    before = snapshot(directory)
    for method in ("PUT", "DELETE"):
        answer = http.call(
            method, f"/api/v1/developer_keys/{default[0]}", admin, data={"developer_key[name]": "x"}
        )
        assert answer.status_code == 404, (method, answer.text)
    assert snapshot(directory) == before
