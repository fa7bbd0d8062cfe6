"""Profile settings through the in-process client: Approved Integrations, a new token shown
once, details, regenerate and delete, each form refused without its CSRF token."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from lmsauth.canvas.models import DeveloperKey
from tests.canvas.access_tokens.support import bearer, execute, manual_token, scope_default_key, token_rows
from tests.canvas.support import issue_tokens, me, sign_in
from tests.conftest import Directory, Person
from tests.flows import form_token

TOKEN_SHOWN = re.compile(r'<code class="copy" id="new-token">([^<]+)</code>')


@pytest.fixture
def person(directory: Directory) -> Person:
    return directory.user(login="pat@example.edu", name="Pat Teacher", email="pat@school.example")


@pytest.fixture
def browser(client, person: Person):
    sign_in(client, person)
    return client


def new_token(browser, purpose: str = "Nightly sync", **extra: str):
    form = browser.get("/profile/tokens/new")
    assert form.status_code == 200
    return browser.post(
        "/profile/tokens",
        data={"authenticity_token": form_token(form.text), "purpose": purpose, **extra},
    )


def test_signed_out_people_are_sent_to_log_in(client) -> None:
    for path in ("/profile/settings", "/profile/tokens/new", "/profile/tokens/1"):
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (302, "/login/canvas")
    assert client.post("/profile/tokens", data={"purpose": "x"}).status_code == 302


def test_settings_show_the_person_and_their_integrations(browser, directory: Directory, person) -> None:
    page = browser.get("/profile/settings")
    assert page.status_code == 200
    assert "Pat Teacher" in page.text and "pat@example.edu" in page.text and "pat@school.example" in page.text
    assert 'aria-current="page">Profile settings' in page.text
    assert "No applications or access tokens yet." in page.text
    manual_token(directory, person, "Grading script")
    issue_tokens(browser, directory.key(name="Gradebook Sync"), person)
    hidden = directory.key(name="Internal Thing")
    issue_tokens(browser, hidden, person)
    execute(
        directory,
        update(DeveloperKey).where(DeveloperKey.name == "Internal Thing").values(internal_service=True),
    )
    page = browser.get("/profile/settings").text
    assert "No App" in page and "Grading script" in page and "Gradebook Sync" in page
    assert "Internal Thing" not in page  # spec 11.3: internal keys' tokens are hidden
    assert page.count('<tr id="token-') == 2


def test_a_new_token_is_shown_once_then_only_its_hint(browser, client, directory: Directory, person) -> None:
    made = new_token(browser)
    assert made.status_code == 200
    token = TOKEN_SHOWN.search(made.text).group(1)
    assert len(token) == 64
    assert 'data-copy="new-token"' in made.text and "/static/copy-token.js" in made.text
    assert made.headers["cache-control"] == "no-store"
    assert me(client, token).json()["name"] == "Pat Teacher"
    settings = browser.get("/profile/settings").text
    assert token not in settings and "Nightly sync" in settings
    row_id = re.search(r'<tr id="token-(\d+)">', settings).group(1)
    details = browser.get(f"/profile/tokens/{row_id}").text
    assert token not in details and f"{token[:5]}..." in details


def test_a_new_token_needs_a_purpose_and_a_future_date(browser, directory: Directory) -> None:
    before = token_rows(directory)
    for purpose, extra, message in (
        ("", {}, "Purpose is required."),
        ("p", {"expires_at": "2001-01-01"}, "The expiration date is in the past."),
        ("p", {"expires_at": "tomorrow"}, "The expiration date is not a date"),
    ):
        refused = new_token(browser, purpose, **extra)
        assert refused.status_code == 400 and message in refused.text
    assert token_rows(directory) == before


def test_a_dated_token_shows_its_expiry(browser) -> None:
    made = new_token(browser, "Dated", expires_at="2999-06-01")
    assert made.status_code == 200 and "2999-06-01T00:00:00Z" in made.text


def test_every_form_is_refused_without_its_csrf_token(browser, directory: Directory, person) -> None:
    token = manual_token(directory, person)
    row_id = re.search(r'<tr id="token-(\d+)">', browser.get("/profile/settings").text).group(1)
    before = token_rows(directory)
    for path, data in (
        ("/profile/tokens", {"purpose": "Sneaky"}),
        (f"/profile/tokens/{row_id}/delete", {}),
        (f"/profile/tokens/{row_id}/regenerate", {}),
    ):
        for csrf in (None, "wrong"):
            sent = {**data, **({"authenticity_token": csrf} if csrf else {})}
            answer = browser.post(path, data=sent)
            assert answer.status_code == 422, (path, csrf)
    assert token_rows(directory) == before
    assert me(browser, token).status_code == 200


def test_delete_on_the_page_revokes_at_once(browser, directory: Directory, person) -> None:
    token = manual_token(directory, person)
    page = browser.get("/profile/settings")
    row_id = re.search(r'<tr id="token-(\d+)">', page.text).group(1)
    answer = browser.post(
        f"/profile/tokens/{row_id}/delete", data={"authenticity_token": form_token(page.text)}
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/profile/settings")
    assert me(browser, token).status_code == 401
    assert "No applications or access tokens yet." in browser.get("/profile/settings").text


def test_regenerate_on_the_page(browser, directory: Directory, person) -> None:
    token = manual_token(directory, person)
    page = browser.get("/profile/settings")
    row_id = re.search(r'<tr id="token-(\d+)">', page.text).group(1)
    answer = browser.post(
        f"/profile/tokens/{row_id}/regenerate", data={"authenticity_token": form_token(page.text)}
    )
    assert answer.status_code == 200
    fresh = TOKEN_SHOWN.search(answer.text).group(1)
    assert fresh != token and "the old one no longer works" in answer.text
    assert me(browser, token).status_code == 401 and me(browser, fresh).status_code == 200


def test_someone_elses_token_is_not_found_on_the_page(browser, directory: Directory, client) -> None:
    other = directory.user(login="sam@example.edu", name="Sam Student")
    theirs = manual_token(directory, other, "Sam's")
    their_id = client.get(f"/api/v1/users/self/tokens/{theirs[:5]}", headers=bearer(theirs)).json()["id"]
    page = browser.get("/profile/settings")
    before = token_rows(directory)
    assert browser.get(f"/profile/tokens/{their_id}").status_code == 404
    for action in ("delete", "regenerate"):
        answer = browser.post(
            f"/profile/tokens/{their_id}/{action}", data={"authenticity_token": form_token(page.text)}
        )
        assert answer.status_code == 404
    assert browser.get("/profile/tokens/abc").status_code == 404
    assert token_rows(directory) == before
    assert me(browser, theirs).status_code == 200


def test_scopes_are_offered_only_where_the_key_enforces_them(browser, directory: Directory) -> None:
    assert 'name="scopes[]"' not in browser.get("/profile/tokens/new").text
    scope = "url:GET|/api/v1/users/:user_id"
    scope_default_key(directory, [scope])
    form = browser.get("/profile/tokens/new").text
    assert 'name="scopes[]"' in form and scope in form
    made = new_token(browser, "Scoped", **{"scopes[]": scope})
    token = TOKEN_SHOWN.search(made.text).group(1)
    assert me(browser, token).status_code == 200
