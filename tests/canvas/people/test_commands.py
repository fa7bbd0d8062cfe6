"""``lmsauth user`` (``canvas.people.commands``) as operators run it, following
``tests/core/test_cli.py``: one JSON object per ``--json``. The verbs run in this process
(``lmsauth_in_process``); ``tests/core/test_cli.py`` runs them as a subprocess."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from lmsauth.canvas.models import Login, User
from tests.core.test_cli import lmsauth_in_process as lmsauth
from tests.core.test_cli import one_json_object, stored


def test_list_show_update_and_delete(tmp_path: Path) -> None:
    for login, name in (("ada@example.edu", "Ada Lovelace"), ("bob@example.edu", "Bob Babbage")):
        created = lmsauth(
            tmp_path, "user", "create", "--login", login, "--password", "pw-123456", "--name", name
        )
        assert created.returncode == 0, created.stderr
    listed = one_json_object(lmsauth(tmp_path, "user", "list", "--json"))
    assert [(user["login"], user["state"]) for user in listed["users"]] == [
        ("bob@example.edu", "active"),  # "Babbage, Bob" sorts first
        ("ada@example.edu", "active"),
    ]

    updated = one_json_object(
        lmsauth(
            tmp_path,
            "user",
            "update",
            "ADA@example.edu",
            "--name",
            "Ada King",
            "--email",
            "ada@home.example",
            "--admin",
            "--password",
            "a-new-password",
            "--json",
        )
    )
    assert (updated["name"], updated["email"], updated["admin"]) == ("Ada King", "ada@home.example", True)
    shown = one_json_object(lmsauth(tmp_path, "user", "show", "ada@example.edu", "--json"))
    assert {k: shown[k] for k in ("name", "sortable_name", "admin", "state")} == {
        "name": "Ada King",
        "sortable_name": "King, Ada",
        "admin": True,
        "state": "active",
    }
    hash_after = stored(tmp_path, select(Login.password_hash).where(Login.unique_id == "ada@example.edu"))

    too_short = lmsauth(tmp_path, "user", "update", "ada@example.edu", "--password", "short", "--no-admin")
    assert too_short.returncode == 1
    assert "password: too_short" in too_short.stderr
    assert (
        stored(tmp_path, select(Login.password_hash).where(Login.unique_id == "ada@example.edu"))
        == hash_after
    )
    assert stored(tmp_path, select(User.is_admin).where(User.name == "Ada King")) == [(True,)]

    deleted = lmsauth(tmp_path, "user", "delete", "bob@example.edu")
    assert deleted.returncode == 0, deleted.stderr
    assert stored(
        tmp_path,
        select(User.workflow_state, Login.workflow_state).join(Login).where(User.name == "Bob Babbage"),
    ) == [("deleted", "deleted")]
    assert [
        user["login"] for user in one_json_object(lmsauth(tmp_path, "user", "list", "--json"))["users"]
    ] == ["ada@example.edu"]
    for verb in ("show", "delete"):
        unknown = lmsauth(tmp_path, "user", verb, "bob@example.edu")
        assert unknown.returncode == 1
        assert "no user with login bob@example.edu" in unknown.stderr


def test_create_refuses_a_short_password(tmp_path: Path) -> None:
    refused = lmsauth(
        tmp_path, "user", "create", "--login", "a@example.edu", "--password", "short", "--name", "A"
    )
    assert refused.returncode == 1
    assert "password must be 8 to 255 characters" in refused.stderr
    assert stored(tmp_path, select(User.id)) == []
