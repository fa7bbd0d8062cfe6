"""Every developer-key operation's answers, good and bad, match the published OpenAPI
document (``tests/contract`` fuzzes them too)."""

from __future__ import annotations

import re
from typing import Any

from tests.canvas.developer_keys.conftest import ADMIN, Caller
from tests.canvas.support import TOKEN, sign_in
from tests.conftest import Person
from tests.contract.conftest import conforms

KEYS = "/api/v1/accounts/{account_id}/developer_keys"
KEY = "/api/v1/developer_keys/{developer_key_id}"
BINDINGS = KEYS + "/{developer_key_id}/developer_key_account_bindings"
PAGES = "/accounts/{account_id}/developer_keys"
CSRF = re.compile(r'name="authenticity_token" value="([^"]+)"')


def test_the_api_answers_as_documented(client: Any, admin: Caller, student: Caller) -> None:
    keys = KEYS.format(account_id="self")
    made = client.post(
        keys,
        headers=admin.headers,
        data={
            "developer_key[name]": "Documented",
            "developer_key[scopes][]": "url:GET|/api/v1/users/:id",
            "developer_key[client_credentials_audience]": "external",
        },
    )
    conforms(made, "POST", KEYS)
    key = made.json()
    one = KEY.format(developer_key_id=key["id"])
    bind = BINDINGS.format(account_id="self", developer_key_id=key["id"])
    calls = [
        (client.get(keys, headers=admin.headers), "GET", KEYS, 200),
        (client.get(keys, headers=student.headers), "GET", KEYS, 401),
        (client.get(keys + "?page=x", headers=admin.headers), "GET", KEYS, 404),
        (client.post(keys, headers=admin.headers, data={"developer_key[scopes]": "bad"}), "POST", KEYS, 400),
        (client.put(one, headers=admin.headers, data={"developer_key[name]": "Renamed"}), "PUT", KEY, 200),
        (client.put(one, headers=admin.headers, data={"developer_key[event]": "nope"}), "PUT", KEY, 400),
        (client.put(one, headers=student.headers, data={}), "PUT", KEY, 401),
        (client.post(bind, headers=admin.headers, data={}), "POST", BINDINGS, 200),
        (
            client.post(
                bind, headers=admin.headers, data={"developer_key_account_binding[workflow_state]": "x"}
            ),
            "POST",
            BINDINGS,
            400,
        ),
        (
            client.post(
                TOKEN,
                data={
                    "grant_type": "client_credentials",
                    "client_id": str(key["id"]),
                    "client_secret": key["api_key"],
                    "scope": "url:GET|/api/v1/users/:id",
                },
            ),
            "POST",
            "/login/oauth2/token",
            200,
        ),
        (client.delete(one, headers=admin.headers), "DELETE", KEY, 200),
        (client.delete(one, headers=admin.headers), "DELETE", KEY, 404),
    ]
    for response, method, path, status in calls:
        assert response.status_code == status, (method, path, response.text)
        conforms(response, method, path)


def test_the_console_answers_as_documented(client: Any, admin: Caller, student: Caller) -> None:
    pages = PAGES.format(account_id="self")
    assert client.get(pages).status_code == 302
    conforms(client.get(pages), "GET", PAGES)
    sign_in(client, Person(0, ADMIN["login"], ADMIN["password"], ADMIN["name"]))
    token = CSRF.search(client.get(pages).text)
    assert token
    created = client.post(
        pages, data={"authenticity_token": token.group(1), "name": "Page", "redirect_uris": ""}
    )
    conforms(created, "POST", PAGES)
    key_id = created.headers["location"].rsplit("/", 1)[1]
    one = PAGES + "/{developer_key_id}"
    calls = [
        (client.get(pages), "GET", PAGES),
        (client.get(pages + "/new"), "GET", PAGES + "/new"),
        (client.get(f"{pages}/{key_id}"), "GET", one),
        (client.get(f"{pages}/0"), "GET", one),
        (client.post(f"{pages}/{key_id}", data={"name": "no token"}), "POST", one),
        (
            client.post(
                f"{pages}/{key_id}", data={"authenticity_token": token.group(1), "redirect_uris": "x"}
            ),
            "POST",
            one,
        ),
        (
            client.post(f"{pages}/{key_id}", data={"authenticity_token": token.group(1), "name": "ok"}),
            "POST",
            one,
        ),
        (
            client.post(
                f"{pages}/{key_id}/binding", data={"authenticity_token": token.group(1), "state": "up"}
            ),
            "POST",
            one + "/binding",
        ),
        (
            client.post(
                f"{pages}/{key_id}/binding", data={"authenticity_token": token.group(1), "state": "on"}
            ),
            "POST",
            one + "/binding",
        ),
        (
            client.post(f"{pages}/{key_id}/delete", data={"authenticity_token": token.group(1)}),
            "POST",
            one + "/delete",
        ),
    ]
    for response, method, path in calls:
        conforms(response, method, path)
