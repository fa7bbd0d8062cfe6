"""The Users and Logins APIs (``canvas.people.api``): canvasapi drives them against a live
server; the in-process client checks each permission both ways and that bad input gets
Canvas's error shape and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from canvasapi import Canvas
from canvasapi.account import Account
from canvasapi.exceptions import BadRequest, Unauthorized
from sqlalchemy import select

from lmsauth.canvas.models import BrowserSession, Login, User
from tests.canvas.people.conftest import auth
from tests.conftest import Directory, LiveServer, Person

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")

UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}
USERS = "/api/v1/accounts/self/users"


def root_account(canvas: Canvas) -> Account:
    """``self``, as the issue's clients name it: this server serves no ``GET /accounts/:id``."""
    return Account(canvas._Canvas__requester, {"id": "self"})  # type: ignore[attr-defined]


def rows(directory: Directory) -> list[tuple[Any, ...]]:
    """Every user and login column a request could change."""
    people = directory.query(
        select(
            User.id,
            User.name,
            User.sortable_name,
            User.short_name,
            User.email,
            User.is_admin,
            User.workflow_state,
            User.time_zone,
            User.locale,
            User.updated_at,
        ).order_by(User.id)
    )
    logins = directory.query(
        select(
            Login.id,
            Login.user_id,
            Login.unique_id,
            Login.password_hash,
            Login.sis_user_id,
            Login.workflow_state,
            Login.updated_at,
        ).order_by(Login.id)
    )
    return [tuple(row) for row in [*people, *logins]]


def new_user(**extra: str) -> dict[str, str]:
    return {
        "user[name]": "Pat Teacher",
        "pseudonym[unique_id]": "pat@example.edu",
        "pseudonym[password]": "pat-password-1",
        **extra,
    }


# ---------------------------------------------------------------------------- canvasapi


def test_canvasapi_creates_lists_across_pages_and_edits(
    live_server: LiveServer, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    canvas = Canvas(live_server.url, token_for(admin))
    account = root_account(canvas)
    created = account.create_user(
        {"unique_id": "pat@example.edu", "password": "pat-password-1", "sis_user_id": "SIS-PAT"},
        user={"name": "Pat Teacher", "time_zone": "America/Denver"},
    )
    assert created.name == "Pat Teacher"
    assert created.sortable_name == "Teacher, Pat"
    assert created.login_id == "pat@example.edu"
    assert created.sis_user_id == "SIS-PAT"
    assert created.time_zone == "America/Denver"
    for number in range(4):
        account.create_user(
            {"unique_id": f"p{number}@example.edu", "password": "long-enough-1"},
            user={"name": f"Person {number}"},
        )

    listed = account.get_users(per_page=2)
    names = [user.name for user in listed]  # PaginatedList follows the Link header's next
    assert len(names) == 7
    assert names == sorted(
        names, key=lambda name: (name.split()[-1] + ", " + " ".join(name.split()[:-1])).lower()
    )
    found = [user.login_id for user in account.get_users(search_term="PAT@EXAMPLE")]
    assert found == ["pat@example.edu"]

    edited = canvas.get_user(created.id).edit(user={"name": "Pat Q. Teacher", "short_name": "Pat"})
    assert edited.name == "Pat Q. Teacher"
    assert edited.short_name == "Pat"
    assert directory.query(select(User.short_name).where(User.id == created.id)) == [("Pat",)]


def test_canvasapi_non_admin_is_unauthorized(live_server: LiveServer, plain: Person, token_for) -> None:
    account = root_account(Canvas(live_server.url, token_for(plain)))
    with pytest.raises(Unauthorized):
        account.create_user({"unique_id": "x@example.edu", "password": "long-enough-1"})
    with pytest.raises(Unauthorized):
        list(account.get_users())


def test_canvasapi_duplicate_login_is_bad_request(live_server: LiveServer, admin: Person, token_for) -> None:
    account = root_account(Canvas(live_server.url, token_for(admin)))
    with pytest.raises(BadRequest) as refused:
        account.create_user({"unique_id": "ADMIN@example.edu", "password": "long-enough-1"})
    assert "ID already in use" in str(refused.value)


# ---------------------------------------------------------------------------- create


def test_create_answers_the_user_and_stores_every_field(
    client, directory: Directory, admin: Person, token_for
) -> None:
    response = client.post(
        USERS,
        data=new_user(
            **{
                "user[short_name]": "Pat",
                "pseudonym[sis_user_id]": "S1",
                "communication_channel[type]": "email",
                "communication_channel[address]": "pat@home.example",
                "user[locale]": "fr",
                "user[time_zone]": "Europe/Paris",
            }
        ),
        headers=auth(token_for(admin)),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        k: body[k]
        for k in (
            "name",
            "short_name",
            "sortable_name",
            "first_name",
            "last_name",
            "login_id",
            "sis_user_id",
            "email",
            "locale",
            "time_zone",
        )
    } == {
        "name": "Pat Teacher",
        "short_name": "Pat",
        "sortable_name": "Teacher, Pat",
        "first_name": "Pat",
        "last_name": "Teacher",
        "login_id": "pat@example.edu",
        "sis_user_id": "S1",
        "email": "pat@home.example",
        "locale": "fr",
        "time_zone": "Europe/Paris",
    }
    stored = directory.query(select(User.email, User.time_zone, User.is_admin).where(User.id == body["id"]))
    assert stored == [("pat@home.example", "Europe/Paris", False)]


@pytest.mark.parametrize(
    ("change", "part", "attribute", "kind", "message"),
    [
        (
            {"pseudonym[unique_id]": "Admin@Example.edu"},
            "pseudonym",
            "unique_id",
            "taken",
            "ID already in use for this account and authentication provider",
        ),
        ({"pseudonym[password]": "short12"}, "pseudonym", "password", "too_short", "too_short"),
        ({"pseudonym[password]": ""}, "pseudonym", "password", "blank", "blank"),
        ({"pseudonym[unique_id]": ""}, "pseudonym", "unique_id", "too_short", "too_short"),
        ({"user[time_zone]": "Mars/Olympus"}, "user", "time_zone", "invalid", "invalid"),
    ],
)
def test_create_refuses_bad_input_and_changes_nothing(
    client, directory: Directory, admin: Person, token_for, change, part, attribute, kind, message
) -> None:
    token = token_for(admin)
    before = rows(directory)
    response = client.post(USERS, data=new_user(**change), headers=auth(token))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"user", "pseudonym", "observee", "pairing_code", "recaptcha"}
    assert errors[part][attribute] == [{"attribute": attribute, "type": kind, "message": message}]
    if part == "pseudonym":
        assert errors["user"]["pseudonyms"] == [
            {"attribute": "pseudonyms", "type": "invalid", "message": "is invalid"}
        ]
    assert rows(directory) == before


def test_create_refuses_a_taken_sis_id(client, directory: Directory, admin: Person, token_for) -> None:
    token = token_for(admin)
    assert (
        client.post(USERS, data=new_user(**{"pseudonym[sis_user_id]": "S1"}), headers=auth(token)).status_code
        == 200
    )
    before = rows(directory)
    again = client.post(
        USERS,
        data=new_user(**{"pseudonym[unique_id]": "other@example.edu", "pseudonym[sis_user_id]": "S1"}),
        headers=auth(token),
    )
    assert again.status_code == 400
    assert again.json()["errors"]["pseudonym"]["sis_user_id"][0]["message"] == 'SIS ID "S1" is already in use'
    assert rows(directory) == before


def test_only_admins_create_and_unknown_accounts_are_404(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    plain_token, token = token_for(plain), token_for(admin)
    before = rows(directory)
    refused = client.post(USERS, data=new_user(), headers=auth(plain_token))
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    assert "WWW-Authenticate" not in refused.headers
    missing = client.post("/api/v1/accounts/999/users", data=new_user(), headers=auth(token))
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
    assert rows(directory) == before


# ---------------------------------------------------------------------------- list


def test_list_pages_the_canvas_way(client, directory: Directory, admin: Person, token_for) -> None:
    for number in range(4):
        directory.user(login=f"p{number}@example.edu", name=f"Person {number}")
    token = token_for(admin)
    first = client.get(USERS, params={"per_page": 2}, headers=auth(token))
    assert first.status_code == 200
    assert [user["name"] for user in first.json()] == ["Person 0", "Person 1"]  # "0, Person" first
    base = "http://testserver/api/v1/accounts/self/users?"
    assert first.headers["Link"] == ",".join(
        [
            f'<{base}page=1&per_page=2>; rel="current"',
            f'<{base}page=2&per_page=2>; rel="next"',
            f'<{base}page=1&per_page=2>; rel="first"',
            f'<{base}page=3&per_page=2>; rel="last"',
        ]
    )
    past_the_end = client.get(USERS, params={"page": 9}, headers=auth(token))
    assert (past_the_end.status_code, past_the_end.json()) == (200, [])
    zero = client.get(USERS, params={"per_page": 0}, headers=auth(token))  # Canvas clamps to 1
    assert len(zero.json()) == 1
    bad_page = client.get(USERS, params={"page": 0}, headers=auth(token))
    assert (bad_page.status_code, bad_page.json()) == (404, NOT_FOUND)


def test_search_and_sort(client, directory: Directory, admin: Person, token_for) -> None:
    directory.user(login="zed@example.edu", name="Zed Alpha", email="zed@mail.example")
    directory.user(login="amy@example.edu", name="Amy Zulu", email="amy@mail.example")
    token = token_for(admin)

    def names(**params: str) -> list[str]:
        response = client.get(USERS, params=params, headers=auth(token))
        assert response.status_code == 200, response.text
        return [user["name"] for user in response.json()]

    assert names() == ["Ada Admin", "Zed Alpha", "Amy Zulu"]  # by sortable name
    assert names(order="desc") == ["Amy Zulu", "Zed Alpha", "Ada Admin"]
    assert names(sort="email") == ["Ada Admin", "Amy Zulu", "Zed Alpha"]
    assert names(search_term="ZUL") == ["Amy Zulu"]  # name
    assert names(search_term="zed@EX") == ["Zed Alpha"]  # login
    assert names(search_term="mail.example") == ["Zed Alpha", "Amy Zulu"]  # email
    assert names(search_term="100%") == []
    short = client.get(USERS, params={"search_term": "a"}, headers=auth(token))
    assert short.status_code == 400
    assert short.json() == {
        "errors": [{"field": "search_term", "code": "invalid", "message": "2 or more characters is required"}]
    }


def test_only_admins_list(client, plain: Person, token_for) -> None:
    response = client.get(USERS, headers=auth(token_for(plain)))
    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)


# ---------------------------------------------------------------------------- show, update


def test_show_another_user_admin_only(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    shown = client.get(f"/api/v1/users/{plain.id}", headers=auth(token_for(admin)))
    assert shown.status_code == 200
    assert shown.json()["login_id"] == plain.login
    refused = client.get(f"/api/v1/users/{admin.id}", headers=auth(token_for(plain)))
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)


def test_a_user_edits_their_own_names_but_not_others_or_admin_fields(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    token = token_for(plain)
    own = client.put(
        "/api/v1/users/self",
        data={"user[short_name]": "Sammy", "user[time_zone]": "Asia/Tokyo"},
        headers=auth(token),
    )
    assert own.status_code == 200, own.text
    assert (own.json()["short_name"], own.json()["time_zone"]) == ("Sammy", "Asia/Tokyo")
    assert "login_id" not in own.json()
    before = rows(directory)
    for path, data in [
        (f"/api/v1/users/{admin.id}", {"user[name]": "Hacked"}),
        ("/api/v1/users/self", {"user[email]": "me@evil.example"}),
        ("/api/v1/users/self", {"user[event]": "unsuspend"}),
    ]:
        refused = client.put(path, data=data, headers=auth(token))
        assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED), path
    assert rows(directory) == before


def test_update_refuses_bad_input_and_unknown_ids(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    token = token_for(admin)
    before = rows(directory)
    bad = client.put(f"/api/v1/users/{plain.id}", data={"user[name]": "x" * 256}, headers=auth(token))
    assert bad.status_code == 400
    assert bad.json() == {
        "errors": {"name": [{"attribute": "name", "type": "too_long", "message": "too_long"}]}
    }
    event = client.put(f"/api/v1/users/{plain.id}", data={"user[event]": "explode"}, headers=auth(token))
    assert event.status_code == 400
    for unknown in ("999999", "abc"):
        missing = client.put(f"/api/v1/users/{unknown}", data={"user[name]": "X"}, headers=auth(token))
        assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
    assert rows(directory) == before


def test_suspend_by_event_stops_tokens_and_sessions_at_once(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    plain_token = token_for(plain)
    assert client.get("/api/v1/users/self", headers=auth(plain_token)).status_code == 200
    sessions_before = directory.query(select(BrowserSession.id).where(BrowserSession.user_id == plain.id))
    assert sessions_before
    token = token_for(admin)
    updated_before = directory.query(select(User.updated_at).where(User.id == plain.id))[0][0]
    suspended = client.put(f"/api/v1/users/{plain.id}", data={"user[event]": "suspend"}, headers=auth(token))
    assert suspended.status_code == 200
    assert client.get("/api/v1/users/self", headers=auth(plain_token)).status_code == 401
    assert directory.query(select(BrowserSession.id).where(BrowserSession.user_id == plain.id)) == []
    assert directory.query(select(User.updated_at).where(User.id == plain.id))[0][0] > updated_before
    # an admin still sees and lists a suspended user; unsuspending brings the token back
    assert client.get(f"/api/v1/users/{plain.id}", headers=auth(token)).status_code == 200
    client.put(f"/api/v1/users/{plain.id}", data={"user[event]": "unsuspend"}, headers=auth(token))
    assert client.get("/api/v1/users/self", headers=auth(plain_token)).status_code == 200


# ---------------------------------------------------------------------------- delete


def test_delete_soft_deletes_and_stops_everything(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    plain_token = token_for(plain)
    token = token_for(admin)
    refused = client.delete(f"{USERS}/{admin.id}", headers=auth(plain_token))
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    deleted = client.delete(f"{USERS}/{plain.id}", headers=auth(token))
    assert deleted.status_code == 200
    assert deleted.json()["login_id"] == plain.login
    assert directory.query(select(User.workflow_state).where(User.id == plain.id)) == [("deleted",)]
    assert directory.query(select(Login.workflow_state).where(Login.user_id == plain.id)) == [("deleted",)]
    assert client.get("/api/v1/users/self", headers=auth(plain_token)).status_code == 401
    assert directory.query(select(BrowserSession.id).where(BrowserSession.user_id == plain.id)) == []
    again = client.delete(f"{USERS}/{plain.id}", headers=auth(token))
    assert (again.status_code, again.json()) == (404, NOT_FOUND)
    assert plain.login not in [user["login_id"] for user in client.get(USERS, headers=auth(token)).json()]


# ---------------------------------------------------------------------------- logins


def test_logins_list_and_permissions(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    token, plain_token = token_for(admin), token_for(plain)
    everyone = client.get("/api/v1/accounts/self/logins", headers=auth(token))
    assert everyone.status_code == 200
    assert {login["unique_id"] for login in everyone.json()} == {admin.login, plain.login}
    assert set(everyone.json()[0]) == {
        "id",
        "user_id",
        "account_id",
        "unique_id",
        "sis_user_id",
        "integration_id",
        "authentication_provider_id",
        "authentication_provider_type",
        "created_at",
        "workflow_state",
        "declared_user_type",
    }
    one = client.get("/api/v1/accounts/self/logins", params={"user[id]": plain.id}, headers=auth(token))
    assert [login["unique_id"] for login in one.json()] == [plain.login]
    own = client.get("/api/v1/users/self/logins", headers=auth(plain_token))
    assert [login["user_id"] for login in own.json()] == [plain.id]
    assert "Link" in own.headers
    for path in ("/api/v1/accounts/self/logins", f"/api/v1/users/{admin.id}/logins"):
        refused = client.get(path, headers=auth(plain_token))
        assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED), path


def _login_id(directory: Directory, person: Person) -> int:
    login_id: int = directory.query(select(Login.id).where(Login.user_id == person.id))[0][0]
    return login_id


def test_update_login_password_unique_id_and_state(
    client, directory: Directory, admin: Person, plain: Person, token_for
) -> None:
    token, plain_token = token_for(admin), token_for(plain)
    path = f"/api/v1/accounts/self/logins/{_login_id(directory, plain)}"
    refused = client.put(path, data={"login[password]": "a-new-password"}, headers=auth(plain_token))
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    hash_before = directory.query(select(Login.password_hash).where(Login.user_id == plain.id))
    changed = client.put(
        path,
        data={"login[unique_id]": "samuel@example.edu", "login[password]": "a-new-password"},
        headers=auth(token),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["unique_id"] == "samuel@example.edu"
    assert directory.query(select(Login.password_hash).where(Login.user_id == plain.id)) != hash_before
    suspended = client.put(path, data={"login[workflow_state]": "suspended"}, headers=auth(token))
    assert suspended.json()["workflow_state"] == "suspended"
    assert client.get("/api/v1/users/self", headers=auth(plain_token)).status_code == 401
    active = client.put(path, data={"login[workflow_state]": "active"}, headers=auth(token))
    assert active.json()["workflow_state"] == "active"


@pytest.mark.parametrize(
    ("data", "attribute", "kind"),
    [
        ({"login[unique_id]": "ADMIN@example.edu"}, "unique_id", "taken"),
        ({"login[password]": "short"}, "password", "too_short"),
        ({"login[workflow_state]": "deleted"}, "workflow_state", "inclusion"),
    ],
)
def test_update_login_refuses_bad_input(
    client, directory: Directory, admin: Person, plain: Person, token_for, data, attribute, kind
) -> None:
    token = token_for(admin)
    before = rows(directory)
    response = client.put(
        f"/api/v1/accounts/self/logins/{_login_id(directory, plain)}", data=data, headers=auth(token)
    )
    assert response.status_code == 400
    assert [error["type"] for error in response.json()["errors"][attribute]] == [kind]
    assert rows(directory) == before
    missing = client.put("/api/v1/accounts/self/logins/999999", data=data, headers=auth(token))
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
