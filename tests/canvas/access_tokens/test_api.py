"""The Access Tokens API (spec 11.2, ``TokensController``) through the in-process client: every
verb, every error in Canvas's shape (and nothing changed by it), and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lmsauth.canvas.models import AccessToken, DeveloperKey
from lmsauth.core import clock
from tests.canvas.access_tokens.support import (
    INVALID_TOKEN,
    NOT_FOUND,
    UNAUTHORIZED,
    bearer,
    manual_token,
    scope_default_key,
    token_count,
    token_rows,
)
from tests.canvas.support import issue_tokens, me
from tests.conftest import Directory

TOKEN_FIELDS = [
    "id",
    "user_id",
    "last_used_at",
    "purpose",
    "created_at",
    "updated_at",
    "scopes",
    "remember_access",
    "workflow_state",
    "real_user_id",
    "app_name",
    "visible_token",
    "expires_at",
    "can_manually_regenerate",
]


@pytest.fixture
def owner(directory: Directory):
    return directory.user(login="pat@example.edu", name="Pat Teacher")


@pytest.fixture
def own_token(directory: Directory, owner) -> str:
    return manual_token(directory, owner)


def create(client, token: str, user: str = "self", **data: str):
    return client.post(f"/api/v1/users/{user}/tokens", data=data, headers=bearer(token))


def test_create_shows_the_token_once_then_only_its_hint(client, owner, own_token) -> None:
    made = create(client, own_token, **{"token[purpose]": "Nightly sync"})
    assert made.status_code == 200, made.text
    body = made.json()
    assert list(body) == TOKEN_FIELDS
    token = body["visible_token"]
    assert len(token) == 64
    assert body["purpose"] == "Nightly sync" and body["user_id"] == owner.id
    assert body["app_name"] == "User-Generated" and body["workflow_state"] == "active"
    assert body["expires_at"] is None and body["scopes"] == [] and body["can_manually_regenerate"] is True
    assert made.headers["cache-control"] == "no-store"
    assert me(client, token).json()["id"] == owner.id

    shown = client.get(f"/api/v1/users/self/tokens/{body['id']}", headers=bearer(token)).json()
    assert shown["visible_token"] == token[:5] + "..."
    by_hint = client.get(f"/api/v1/users/self/tokens/{token[:5]}", headers=bearer(token)).json()
    assert by_hint["id"] == body["id"]
    listed = client.get("/api/v1/users/self/user_generated_tokens", headers=bearer(token)).json()
    assert [row["visible_token"] for row in listed] == [own_token[:5] + "...", token[:5] + "..."]


def test_own_numeric_id_is_self(client, owner, own_token) -> None:
    made = create(client, own_token, user=str(owner.id), **{"token[purpose]": "By id"})
    assert made.status_code == 200
    global_id = str(10_000_000_000_000 + owner.id)
    assert (
        client.get(f"/api/v1/users/{global_id}/user_generated_tokens", headers=bearer(own_token)).status_code
        == 200
    )


def test_a_manual_token_has_no_hourly_expiry_only_its_own(client, owner, own_token) -> None:
    expiry = (clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = create(client, own_token, **{"token[purpose]": "Two days", "token[expires_at]": expiry}).json()
    assert made["expires_at"] == expiry
    clock.advance(3601)
    assert me(client, made["visible_token"]).status_code == 200
    assert me(client, own_token).status_code == 200
    clock.advance(2 * 86400)
    refused = me(client, made["visible_token"])
    assert refused.status_code == 401 and refused.json() == INVALID_TOKEN
    assert refused.headers["www-authenticate"] == 'Bearer realm="canvas-lms"'
    assert me(client, own_token).status_code == 200


@pytest.mark.parametrize(
    ("data", "body"),
    [
        ({}, [{"message": "token[purpose] is missing"}]),
        ({"token[expires_at]": "2999-01-01"}, [{"message": "token[purpose] is missing"}]),
        (
            {"token[purpose]": ""},
            {"errors": {"purpose": [{"attribute": "purpose", "type": "too_short", "message": "too_short"}]}},
        ),
        (
            {"token[purpose]": "x" * 256},
            {"errors": {"purpose": [{"attribute": "purpose", "type": "too_long", "message": "too_long"}]}},
        ),
        (
            {"token[purpose]": "p", "token[expires_at]": "next tuesday"},
            [{"message": "Invalid expiration date format"}],
        ),
        (
            {"token[purpose]": "p", "token[expires_at]": "2024-13-40"},
            [{"message": "Invalid expiration date format"}],
        ),
        (
            {"token[purpose]": "p", "token[expires_at]": "9999-12-31T23:59:59-23:59"},
            [{"message": "Invalid expiration date format"}],
        ),
        (
            {"token[purpose]": "p", "token[expires_at]": "2001-01-01"},
            [{"message": "Expiration date cannot be in the past"}],
        ),
    ],
    ids=["nothing", "no-purpose", "empty-purpose", "long-purpose", "words", "bad-date", "overflow", "past"],
)
def test_bad_input_is_refused_in_canvas_shape_and_changes_nothing(
    client, directory: Directory, own_token, data, body
) -> None:
    before = token_rows(directory)
    refused = create(client, own_token, **data)
    assert refused.status_code == 400
    assert refused.json() == body
    assert token_rows(directory) == before


def test_unknown_ids_are_not_found(client, directory: Directory, own_token) -> None:
    before = token_rows(directory)
    for raw in ("999999", "zzzzz", "99999999999999999999", "-1"):
        for method in ("GET", "PUT", "DELETE"):
            answer = client.request(
                method,
                f"/api/v1/users/self/tokens/{raw}",
                data={"token[regenerate]": "1"} if method == "PUT" else None,
                headers=bearer(own_token),
            )
            assert (answer.status_code, answer.json()) == (404, NOT_FOUND), (method, raw)
    assert client.get("/api/v1/users/abc/user_generated_tokens", headers=bearer(own_token)).status_code == 404
    assert token_rows(directory) == before


def test_regenerate_gives_a_new_string_on_the_same_row(
    client, directory: Directory, owner, own_token
) -> None:
    second = manual_token(directory, owner, "Second")
    row_id = client.get(f"/api/v1/users/self/tokens/{second[:5]}", headers=bearer(own_token)).json()["id"]
    answer = client.put(
        f"/api/v1/users/self/tokens/{row_id}", data={"token[regenerate]": "1"}, headers=bearer(own_token)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    fresh = body["visible_token"]
    assert body["id"] == row_id and len(fresh) == 64 and fresh != second
    assert answer.headers["cache-control"] == "no-store"
    assert me(client, second).status_code == 401
    assert me(client, fresh).status_code == 200
    again = client.get(f"/api/v1/users/self/tokens/{row_id}", headers=bearer(own_token)).json()
    assert again["visible_token"] == fresh[:5] + "..."


def test_an_expired_token_regenerates_only_with_a_new_expiry(
    client, directory: Directory, owner, own_token
) -> None:
    soon = (clock.now() + timedelta(hours=2)).isoformat()
    expiring = manual_token(directory, owner, "Short", expires_at=soon)
    row = client.get(f"/api/v1/users/self/tokens/{expiring[:5]}", headers=bearer(own_token)).json()
    clock.advance(3 * 3600)
    before = token_rows(directory)
    path = f"/api/v1/users/self/tokens/{row['id']}"
    refused = client.put(path, data={"token[regenerate]": "true"}, headers=bearer(own_token))
    assert refused.status_code == 400
    assert refused.json() == {
        "errors": {"message": "cannot regenerate an expired token without a new expiration date"}
    }
    assert token_rows(directory) == before
    later = (clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    renewed = client.put(
        path, data={"token[regenerate]": "1", "token[expires_at]": later}, headers=bearer(own_token)
    ).json()
    assert renewed["expires_at"] == later and renewed["can_manually_regenerate"] is True
    assert me(client, renewed["visible_token"]).status_code == 200


def test_update_refuses_bad_input_and_a_missing_token_param(client, directory: Directory, own_token) -> None:
    path = f"/api/v1/users/self/tokens/{own_token[:5]}"
    before = token_rows(directory)
    for data, body in (
        ({}, {"errors": [{"message": "param is missing or the value is empty: token"}]}),
        ({"token[expires_at]": "soon"}, [{"message": "Invalid expiration date format"}]),
        (
            {"token[expires_at]": "2000-01-01T00:00:00Z"},
            [{"message": "Expiration date cannot be in the past"}],
        ),
        (
            {"token[regenerate]": "1", "token[expires_at]": "x"},
            [{"message": "Invalid expiration date format"}],
        ),
    ):
        answer = client.put(path, data=data, headers=bearer(own_token))
        assert (answer.status_code, answer.json()) == (400, body), data
    assert token_rows(directory) == before
    assert me(client, own_token).status_code == 200


def test_delete_by_hint_revokes_at_once(client, directory: Directory, owner, own_token) -> None:
    doomed = manual_token(directory, owner, "Doomed")
    answer = client.delete(f"/api/v1/users/self/tokens/{doomed[:5]}", headers=bearer(own_token))
    assert answer.status_code == 200
    assert answer.json()["workflow_state"] == "deleted" and answer.json()["purpose"] == "Doomed"
    assert me(client, doomed).status_code == 401
    gone = client.get(f"/api/v1/users/self/tokens/{doomed[:5]}", headers=bearer(own_token))
    assert gone.status_code == 404


def test_user_generated_lists_only_manual_tokens_a_page_at_a_time(
    client, directory: Directory, owner, own_token
) -> None:
    key = directory.key(name="Gradebook Sync")
    oauth = issue_tokens(client, key, owner)["access_token"]
    for number in range(3):
        manual_token(directory, owner, f"Script {number}")
    listed = client.get("/api/v1/users/self/user_generated_tokens?per_page=2", headers=bearer(oauth))
    assert [row["purpose"] for row in listed.json()] == ["Grading script", "Script 0"]
    assert 'rel="next"' in listed.headers["link"] and "per_page=2" in listed.headers["link"]
    last = client.get("/api/v1/users/self/user_generated_tokens?per_page=2&page=2", headers=bearer(oauth))
    assert [row["purpose"] for row in last.json()] == ["Script 1", "Script 2"]
    # The OAuth token is the user's too: readable and deletable, with no visible token.
    own_oauth = client.get(f"/api/v1/users/self/tokens/{oauth[:5]}", headers=bearer(own_token)).json()
    assert own_oauth["app_name"] == "Gradebook Sync" and own_oauth["visible_token"] is None
    assert own_oauth["can_manually_regenerate"] is False


def test_the_list_shows_each_token_as_reading_it_alone_does(client, owner, own_token) -> None:
    """The list is read on the driver (``manual.user_generated_page``), a token alone through the
    ORM: every field of every row must agree, including times, scopes and an expiry."""
    expiry = (clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scoped = create(client, own_token, **{"token[purpose]": "Scoped", "token[expires_at]": expiry})
    assert scoped.status_code == 200, scoped.text
    clock.advance(60)
    assert me(client, scoped.json()["visible_token"]).status_code == 200  # sets its last_used_at
    renamed = client.put(
        f"/api/v1/users/self/tokens/{scoped.json()['id']}",
        data={"token[purpose]": "Scoped, renamed"},
        headers=bearer(own_token),
    )
    assert renamed.status_code == 200, renamed.text  # and its updated_at, a minute after creation
    clock.advance(60)
    create(client, own_token, **{"token[purpose]": "Later"})
    listed = client.get("/api/v1/users/self/user_generated_tokens", headers=bearer(own_token))
    assert listed.status_code == 200
    rows = listed.json()
    assert [row["purpose"] for row in rows] == ["Grading script", "Scoped, renamed", "Later"]
    assert rows[1]["last_used_at"] is not None and rows[1]["expires_at"] == expiry
    assert rows[1]["updated_at"] != rows[1]["created_at"]
    for row in rows:
        alone = client.get(f"/api/v1/users/self/tokens/{row['id']}", headers=bearer(own_token)).json()
        assert list(row) == TOKEN_FIELDS and row == alone


def test_a_page_past_the_end_is_empty_and_still_counts_them_all(client, owner, own_token) -> None:
    for number in range(4):
        create(client, own_token, **{"token[purpose]": f"Script {number}"})
    doomed = create(client, own_token, **{"token[purpose]": "Doomed"}).json()
    client.delete(f"/api/v1/users/self/tokens/{doomed['id']}", headers=bearer(own_token))
    listing = "/api/v1/users/self/user_generated_tokens"
    past = client.get(f"{listing}?per_page=2&page=9", headers=bearer(own_token))
    assert past.status_code == 200 and past.json() == []
    # five live tokens (the deleted one is neither listed nor counted): three pages of two ...
    assert 'page=3&per_page=2>; rel="last"' in past.headers["link"]
    # ... and one of five
    first = client.get(f"{listing}?per_page=5", headers=bearer(own_token))
    assert [row["purpose"] for row in first.json()] == ["Grading script"] + [f"Script {n}" for n in range(4)]
    assert 'rel="next"' not in first.headers["link"]


# ---------------------------------------------------------------- permissions, both ways


@pytest.fixture
def other(directory: Directory):
    return directory.user(login="sam@example.edu", name="Sam Student")


def test_a_person_is_refused_everything_on_another_persons_tokens(
    client, directory: Directory, owner, own_token, other
) -> None:
    theirs = manual_token(directory, other, "Sam's")
    before = token_rows(directory)
    path = f"/api/v1/users/{other.id}"
    attempts = [
        client.get(f"{path}/user_generated_tokens", headers=bearer(own_token)),
        client.post(f"{path}/tokens", data={"token[purpose]": "mine now"}, headers=bearer(own_token)),
        client.get(f"{path}/tokens/{theirs[:5]}", headers=bearer(own_token)),
        client.put(f"{path}/tokens/{theirs[:5]}", data={"token[regenerate]": "1"}, headers=bearer(own_token)),
        client.delete(f"{path}/tokens/{theirs[:5]}", headers=bearer(own_token)),
        # Unknown people and ids get the same answer: nothing is told about them.
        client.get("/api/v1/users/999999/user_generated_tokens", headers=bearer(own_token)),
        client.delete(f"{path}/tokens/999999", headers=bearer(own_token)),
    ]
    for answer in attempts:
        assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED), answer.request.url
        assert "www-authenticate" not in answer.headers
    assert token_rows(directory) == before
    assert me(client, theirs).status_code == 200
    # Their own token under their own path is not reachable through mine either.
    assert client.get(f"/api/v1/users/self/tokens/{theirs[:5]}", headers=bearer(own_token)).status_code == 404


def test_an_admin_lists_reads_and_deletes_anyones_tokens(client, directory: Directory, other) -> None:
    admin = directory.user(login="ada@example.edu", name="Ada Admin", admin=True)
    admin_token = manual_token(directory, admin, "Admin tools")
    theirs = manual_token(directory, other, "Sam's")
    path = f"/api/v1/users/{other.id}"
    listed = client.get(f"{path}/user_generated_tokens", headers=bearer(admin_token))
    assert listed.status_code == 200 and [row["purpose"] for row in listed.json()] == ["Sam's"]
    assert client.get(f"{path}/tokens/{theirs[:5]}", headers=bearer(admin_token)).json()["visible_token"] == (
        theirs[:5] + "..."
    )
    assert (
        client.get("/api/v1/users/999999/user_generated_tokens", headers=bearer(admin_token)).status_code
        == 404
    )
    before = token_rows(directory)
    for refused in (
        client.post(f"{path}/tokens", data={"token[purpose]": "for Sam"}, headers=bearer(admin_token)),
        client.put(
            f"{path}/tokens/{theirs[:5]}", data={"token[regenerate]": "1"}, headers=bearer(admin_token)
        ),
    ):
        assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    assert token_rows(directory) == before
    deleted = client.delete(f"{path}/tokens/{theirs[:5]}", headers=bearer(admin_token))
    assert deleted.status_code == 200 and deleted.json()["workflow_state"] == "deleted"
    assert me(client, theirs).status_code == 401
    assert client.get(f"{path}/user_generated_tokens", headers=bearer(admin_token)).json() == []
    # A person deleted is not found, for an admin too.
    gone = client.delete(f"/api/v1/accounts/self/users/{other.id}", headers=bearer(admin_token))
    assert gone.status_code == 200, gone.text
    assert client.get(f"{path}/user_generated_tokens", headers=bearer(admin_token)).status_code == 404


def test_an_admin_cannot_read_another_persons_oauth_token(client, directory: Directory, other) -> None:
    admin = directory.user(login="ada@example.edu", name="Ada Admin", admin=True)
    admin_token = manual_token(directory, admin, "Admin tools")
    oauth = issue_tokens(client, directory.key(), other)["access_token"]
    answer = client.get(f"/api/v1/users/{other.id}/tokens/{oauth[:5]}", headers=bearer(admin_token))
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
    assert (
        client.delete(f"/api/v1/users/{other.id}/tokens/{oauth[:5]}", headers=bearer(admin_token)).status_code
        == 200
    )
    assert me(client, oauth).status_code == 401


# ---------------------------------------------------------------- the default key


def test_the_default_key_is_no_oauth_client(client, directory: Directory, own_token) -> None:
    key = directory.query(
        select(DeveloperKey.id, DeveloperKey.auto_expire_tokens).where(DeveloperKey.is_default)
    )
    assert len(key) == 1 and key[0][1] is False
    client_id = str(10_000_000_000_000 + key[0][0])
    auth = client.get(
        "/login/oauth2/auth",
        params={
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": "https://app.example.com/cb",
        },
    )
    assert auth.status_code == 401 and auth.json()["error_description"] == "unknown client"
    for grant in (
        {"grant_type": "refresh_token", "refresh_token": "x"},
        {"grant_type": "authorization_code", "code": "x"},
    ):
        token = client.post(
            "/login/oauth2/token", data={"client_id": client_id, "client_secret": "s" * 64, **grant}
        )
        assert token.status_code == 401 and token.json()["error"] == "invalid_client"


def test_scopes_only_where_the_default_key_enforces_them(
    client, directory: Directory, owner, own_token
) -> None:
    ignored = create(
        client, own_token, **{"token[purpose]": "p", "token[scopes][]": "url:GET|/api/v1/users/:id"}
    )
    assert ignored.json()["scopes"] == []
    scope = "url:GET|/api/v1/users/:user_id"
    scope_default_key(directory, [scope, "url:GET|/api/v1/users/:user_id/user_generated_tokens"])
    # Now the key's unscoped tokens may call nothing (Canvas's require_scopes): an OAuth
    # token of another key makes the scoped ones.
    assert me(client, own_token).status_code == 401
    oauth = issue_tokens(client, directory.key(), owner)["access_token"]
    before = token_count(directory)
    refused = create(client, oauth, **{"token[purpose]": "p", "token[scopes][]": "url:GET|/api/v1/courses"})
    assert refused.status_code == 400
    assert (
        refused.json()["errors"]["scopes"][0]["message"]
        == "requested scopes must match scopes on developer key"
    )
    assert token_count(directory) == before
    scoped = create(client, oauth, **{"token[purpose]": "p", "token[scopes][]": scope}).json()
    assert scoped["scopes"] == [scope]
    assert me(client, scoped["visible_token"]).status_code == 200
    narrow = client.get("/api/v1/users/self/user_generated_tokens", headers=bearer(scoped["visible_token"]))
    assert (
        narrow.status_code == 401
        and narrow.json()["errors"][0]["message"] == "Insufficient scopes on access token."
    )


def test_deleting_through_the_api_leaves_a_soft_deleted_row(
    client, directory: Directory, owner, own_token
) -> None:
    doomed = manual_token(directory, owner, "Doomed")
    client.delete(f"/api/v1/users/self/tokens/{doomed[:5]}", headers=bearer(own_token))
    states = directory.query(select(AccessToken.purpose, AccessToken.workflow_state).order_by(AccessToken.id))
    assert [tuple(row) for row in states] == [("Grading script", "active"), ("Doomed", "deleted")]
