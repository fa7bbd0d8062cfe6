"""The admin console's Developer Keys pages: admins list, create, edit, turn on and off, read
the secret and delete; others are sent to log in or get "Unauthorized"; every form needs the
session's CSRF token, and a refused form changes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from lmsauth.canvas.models import AccessToken, DeveloperKey
from tests.canvas.developer_keys.conftest import ADMIN, snapshot
from tests.canvas.support import exchange, get_code, me, sign_in
from tests.conftest import Directory, Key, Person

PAGES = "/accounts/self/developer_keys"
CSRF = re.compile(r'name="authenticity_token" value="([^"]+)"')
CALLBACK = "https://tool.example/callback"
READ = "url:GET|/api/v1/users/:id"


@pytest.fixture
def admin_person(directory: Directory) -> Person:
    return directory.user(admin=True, **ADMIN)


@pytest.fixture
def browser(client: Any, admin_person: Person) -> Any:
    """The admin, signed in."""
    sign_in(client, admin_person)
    return client


def token_of(client: Any, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match
    return match.group(1)


def only_key(directory: Directory) -> DeveloperKey:
    (row,) = directory.query(select(DeveloperKey).order_by(DeveloperKey.id.desc()).limit(1))
    key: DeveloperKey = row[0]
    return key


def create_on_console(browser: Any, **fields: str) -> Any:
    form = {
        "authenticity_token": token_of(browser, f"{PAGES}/new"),
        "name": "Console Tool",
        "redirect_uris": f"{CALLBACK}\nhttps://tool.example/second",
        "scopes": READ,
        **fields,
    }
    return browser.post(PAGES, data=form)


def test_an_admin_creates_a_key_that_starts_off_and_shows_its_secret(
    browser: Any, directory: Directory
) -> None:
    page = browser.get(f"{PAGES}/new")
    assert page.status_code == 200
    for field in ("key-name", "key-redirect-uris", "key-scopes", "key-require-scopes", "key-audience"):
        assert f'for="{field}"' in page.text and f'id="{field}"' in page.text
    assert page.headers["content-security-policy"] and page.headers["x-frame-options"] == "DENY"
    created = create_on_console(browser, require_scopes="1")
    assert created.status_code == 303
    key = only_key(directory)
    assert created.headers["location"] == f"{PAGES}/{key.client_id}"
    assert (key.name, key.redirect_uris, key.scopes, key.require_scopes) == (
        "Console Tool",
        [CALLBACK, "https://tool.example/second"],
        [READ],
        True,
    )
    assert key.binding_state == "off"
    shown = browser.get(created.headers["location"])
    secret = re.search(r'id="client-secret">([^<]+)<', shown.text)
    assert secret and len(secret.group(1)) == 64
    listing = browser.get(PAGES)
    assert key.client_id in listing.text and "Show key" in listing.text and secret.group(1) in listing.text
    assert 'aria-current="page">Developer Keys' in listing.text


def test_turning_a_key_on_lets_the_flow_work_and_off_stops_its_tokens(
    browser: Any, directory: Directory, client: Any
) -> None:
    create_on_console(browser)
    row = only_key(directory)
    secret = re.search(r'id="client-secret">([^<]+)<', browser.get(f"{PAGES}/{row.client_id}").text)
    assert secret
    key = Key(row.client_id, secret.group(1), [CALLBACK])
    turn = {"authenticity_token": token_of(browser, PAGES), "state": "on"}
    assert browser.post(f"{PAGES}/{row.client_id}/binding", data=turn).status_code == 303
    assert only_key(directory).binding_state == "on"

    client.cookies.clear()
    student = directory.user()
    token = exchange(client, key, get_code(client, key, student, scope=READ)).json()["access_token"]
    assert me(client, token).status_code == 200

    client.cookies.clear()
    sign_in(client, Person(0, ADMIN["login"], ADMIN["password"], ADMIN["name"]))
    off = {"authenticity_token": token_of(client, PAGES), "state": "off"}
    assert client.post(f"{PAGES}/{row.client_id}/binding", data=off).status_code == 303
    assert me(client, token).status_code == 401


def test_editing_redirect_uris_and_scopes(browser: Any, directory: Directory) -> None:
    create_on_console(browser)
    key = only_key(directory)
    path = f"{PAGES}/{key.client_id}"
    form = {
        "authenticity_token": token_of(browser, path),
        "name": "Renamed",
        "redirect_uris": "https://elsewhere.example/cb",
        "scopes": f"{READ}\nurl:GET|/api/v1/courses",
        "client_credentials_audience": "external",
    }
    assert browser.post(path, data=form).status_code == 303
    changed = only_key(directory)
    assert (changed.name, changed.redirect_uris, changed.scopes) == (
        "Renamed",
        ["https://elsewhere.example/cb"],
        [READ, "url:GET|/api/v1/courses"],
    )
    assert changed.client_credentials_audience == "external" and changed.require_scopes is False


def test_a_bad_edit_shows_the_error_and_changes_nothing(browser: Any, directory: Directory) -> None:
    create_on_console(browser)
    key = only_key(directory)
    path = f"{PAGES}/{key.client_id}"
    before = snapshot(directory)
    for field, value in (("redirect_uris", "not a url"), ("scopes", "no-such-scope")):
        form = {"authenticity_token": token_of(browser, path), "name": "Broken", field: value}
        refused = browser.post(path, data=form)
        assert refused.status_code == 422
        assert 'role="alert"' in refused.text and field in refused.text
    assert snapshot(directory) == before
    bad_new = create_on_console(browser, redirect_uris="relative/path")
    assert bad_new.status_code == 422
    assert snapshot(directory) == before


def test_removing_a_scope_on_the_console_destroys_the_keys_tokens(
    browser: Any, directory: Directory, client: Any
) -> None:
    key = directory.key(redirect_uris=[CALLBACK], scopes=[READ, "url:GET|/api/v1/courses"])
    student = directory.user()
    client.cookies.clear()
    token = exchange(client, key, get_code(client, key, student, scope=READ)).json()["access_token"]
    client.cookies.clear()
    sign_in(client, Person(0, ADMIN["login"], ADMIN["password"], ADMIN["name"]))
    path = f"{PAGES}/{key.client_id}"
    form = {
        "authenticity_token": token_of(client, path),
        "name": "Kept",
        "redirect_uris": CALLBACK,
        "scopes": READ,
    }
    assert client.post(path, data=form).status_code == 303
    assert me(client, token).status_code == 401
    states = directory.query(select(AccessToken.workflow_state))
    assert states == [("deleted",)]


def test_delete_on_the_console(browser: Any, directory: Directory) -> None:
    create_on_console(browser)
    key = only_key(directory)
    form = {"authenticity_token": token_of(browser, PAGES)}
    assert browser.post(f"{PAGES}/{key.client_id}/delete", data=form).status_code == 303
    assert only_key(directory).workflow_state == "deleted"
    assert key.client_id not in browser.get(PAGES).text
    assert browser.get(f"{PAGES}/{key.client_id}").status_code == 404


@pytest.mark.parametrize(
    ("suffix", "data"),
    [
        ("", {"name": "Forged", "redirect_uris": CALLBACK}),
        ("/{id}", {"name": "Forged", "redirect_uris": CALLBACK}),
        ("/{id}/binding", {"state": "on"}),
        ("/{id}/delete", {}),
    ],
)
def test_every_form_needs_the_csrf_token(
    browser: Any, directory: Directory, suffix: str, data: dict[str, str]
) -> None:
    create_on_console(browser)
    key = only_key(directory)
    before = snapshot(directory)
    for token in (None, "wrong"):
        form = {**data, **({"authenticity_token": token} if token else {})}
        refused = browser.post(PAGES + suffix.format(id=key.client_id), data=form)
        assert refused.status_code == 422
    assert snapshot(directory) == before


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("GET", "/new"),
        ("GET", "/{id}"),
        ("POST", ""),
        ("POST", "/{id}"),
        ("POST", "/{id}/binding"),
        ("POST", "/{id}/delete"),
    ],
)
def test_non_admins_get_the_unauthorized_page_and_strangers_the_login(
    client: Any, directory: Directory, method: str, suffix: str
) -> None:
    key = directory.key()
    path = PAGES + suffix.format(id=key.client_id)
    before = snapshot(directory)
    stranger = client.request(method, path, data={"state": "on", "name": "x"} if method == "POST" else None)
    assert (stranger.status_code, stranger.headers.get("location")) == (302, "/login/canvas")
    sign_in(client, directory.user())
    token = CSRF.search(client.get("/").text)
    form = {"state": "on", "name": "x", "authenticity_token": token.group(1) if token else ""}
    refused = client.request(method, path, data=form if method == "POST" else None)
    assert refused.status_code == 401
    assert "Unauthorized" in refused.text
    assert "Developer Keys</a>" not in refused.text  # no admin navigation for a non-admin
    assert snapshot(directory) == before


def test_unknown_accounts_and_keys_are_not_found(browser: Any) -> None:
    assert browser.get("/accounts/42/developer_keys").status_code == 404
    assert browser.get(f"{PAGES}/999999").status_code == 404
    assert browser.get(f"{PAGES}/abc").status_code == 404
