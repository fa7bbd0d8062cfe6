"""The People console (``canvas.people.pages``): admins only, every change a POST with the
session's authenticity token, each action doing what it says."""

from __future__ import annotations

import re

from sqlalchemy import select
from starlette.testclient import TestClient

from lmsauth.canvas.models import BrowserSession, Login, User
from tests.canvas.support import sign_in
from tests.conftest import Directory, Person

TOKEN = re.compile(r'name="authenticity_token" value="([^"]+)"')
PERSON_LINK = re.compile(r'<a href="/accounts/self/users/\d+">')


def signed_in(client: TestClient, person: Person) -> str:
    sign_in(client, person)
    page = client.get("/accounts/self/users/new")
    match = TOKEN.search(page.text)
    assert match is not None, page.text
    return match.group(1)


def state(directory: Directory, person: Person) -> list[tuple[str, str]]:
    return [
        tuple(row)
        for row in directory.query(
            select(User.workflow_state, Login.workflow_state)
            .join(Login, Login.user_id == User.id)
            .where(User.id == person.id)
        )
    ]


def test_anonymous_goes_to_login_and_non_admin_is_not_authorized(client: TestClient, plain: Person) -> None:
    for path in ("/accounts/self/users", "/accounts/self/users/new", f"/accounts/self/users/{plain.id}"):
        response = client.get(path)
        assert (response.status_code, response.headers["location"]) == (302, "/login/canvas"), path
    assert client.post("/accounts/self/users", data={}).status_code == 302
    sign_in(client, plain)
    for path in ("/accounts/self/users", "/accounts/self/users/new", f"/accounts/self/users/{plain.id}"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "You are not authorized to perform that action." in response.text
    refused = client.post(f"/accounts/self/users/{plain.id}", data={"action": "suspend"})
    assert refused.status_code == 401


def test_index_searches_and_pages(client: TestClient, directory: Directory, admin: Person) -> None:
    for number in range(12):
        directory.user(login=f"p{number:02}@example.edu", name=f"Person {number:02}")
    signed_in(client, admin)
    first = client.get("/accounts/self/users")
    assert first.status_code == 200
    assert first.headers["content-security-policy"].startswith("default-src 'self'")
    assert "13 people" in first.text
    assert len(PERSON_LINK.findall(first.text)) == 10
    assert '<a href="/accounts/self/users?page=2">Next</a>' in first.text
    second = client.get("/accounts/self/users", params={"page": 2})
    assert len(PERSON_LINK.findall(second.text)) == 3
    found = client.get("/accounts/self/users", params={"search_term": "person 07"})
    assert "1 person" in found.text and "p07@example.edu" in found.text
    short = client.get("/accounts/self/users", params={"search_term": "p"})
    assert short.status_code == 400
    assert "2 or more characters is required" in short.text
    assert client.get("/accounts/self/users", params={"page": "0"}).status_code == 404


def test_create_needs_the_token_and_refuses_bad_input(
    client: TestClient, directory: Directory, admin: Person
) -> None:
    token = signed_in(client, admin)
    form = {
        "user[name]": "Pat Teacher",
        "pseudonym[unique_id]": "pat@example.edu",
        "pseudonym[password]": "pat-password-1",
    }
    users_before = directory.query(select(User.id))
    for presented in (None, "forged"):
        data = form if presented is None else {**form, "authenticity_token": presented}
        refused = client.post("/accounts/self/users", data=data)
        assert refused.status_code == 422
    for bad, message in (
        ({"pseudonym[password]": "short"}, "password: too_short"),
        ({"pseudonym[unique_id]": "ADMIN@example.edu"}, "unique_id: ID already in use"),
    ):
        response = client.post("/accounts/self/users", data={**form, **bad, "authenticity_token": token})
        assert response.status_code == 400
        assert message in response.text
    assert directory.query(select(User.id)) == users_before
    created = client.post(
        "/accounts/self/users", data={**form, "user[admin]": "1", "authenticity_token": token}
    )
    assert created.status_code == 303
    assert created.headers["location"].startswith("/accounts/self/users/")
    assert directory.query(select(User.name, User.is_admin).where(User.email == "pat@example.edu")) == [
        ("Pat Teacher", True)
    ]
    page = client.get(created.headers["location"])
    assert "Added Pat Teacher." in page.text


def test_each_action_of_a_person(
    client: TestClient, directory: Directory, admin: Person, plain: Person
) -> None:
    other = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    sign_in(other, plain)
    token = signed_in(client, admin)
    path = f"/accounts/self/users/{plain.id}"

    def act(**data: str) -> int:
        return client.post(path, data={**data, "authenticity_token": token}).status_code

    assert client.post(path, data={"action": "suspend"}).status_code == 422  # no token: nothing happens
    assert state(directory, plain) == [("registered", "active")]

    assert act(action="update", **{"user[name]": "Samuel Student", "user[email]": "sam@home.example"}) == 303
    assert directory.query(select(User.name, User.email, User.is_admin).where(User.id == plain.id)) == [
        ("Samuel Student", "sam@home.example", False)
    ]
    hash_before = directory.query(select(Login.password_hash).where(Login.user_id == plain.id))
    assert act(action="password", password="short") == 400
    assert directory.query(select(Login.password_hash).where(Login.user_id == plain.id)) == hash_before
    assert act(action="password", password="a brand new password") == 303
    assert directory.query(select(Login.password_hash).where(Login.user_id == plain.id)) != hash_before

    assert act(action="suspend") == 303
    assert state(directory, plain) == [("registered", "suspended")]
    assert directory.query(select(BrowserSession.id).where(BrowserSession.user_id == plain.id)) == []
    assert "Unsuspend" in client.get(path).text
    assert act(action="unsuspend") == 303
    assert state(directory, plain) == [("registered", "active")]

    confirm = client.post(path, data={"action": "delete", "authenticity_token": token})
    assert confirm.status_code == 200 and "Delete Samuel Student?" in confirm.text
    assert state(directory, plain) == [("registered", "active")]
    assert act(action="delete", confirm="yes") == 303
    assert state(directory, plain) == [("deleted", "deleted")]
    assert client.get(path).status_code == 404
