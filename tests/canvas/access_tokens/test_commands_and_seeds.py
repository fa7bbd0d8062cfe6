"""``lmsauth token ...`` and ``[[access_tokens]]`` in seed files (an emulator reset restores them)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from lmsauth.canvas.models import AccessToken
from lmsauth.cli import main
from lmsauth.settings import Settings
from tests.canvas.access_tokens.support import bearer, token_count
from tests.canvas.support import me
from tests.conftest import TEST_SECRET_KEY, Directory
from tests.emulator.conftest import emulator_client

SEEDED = "Sd7kTRy4mHnNcfPq2LzXwV9bGjE6uAeR3tYhKMCD8WxFZa2nTmrP4vQkhLYy9eUc"
SEED = f"""
[[users]]
login = "pat@example.edu"
password = "pat-password-0123"
name = "Pat Teacher"

[[access_tokens]]
login = "pat@example.edu"
purpose = "Seeded script"
token = "{SEEDED}"
expires_at = 2999-01-01T00:00:00Z
"""


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LMSAUTH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LMSAUTH_SECRET_KEY", TEST_SECRET_KEY)
    return settings


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_token_create_list_and_revoke(cli_env, client, directory: Directory) -> None:
    person = directory.user(login="pat@example.edu", name="Pat Teacher")
    made = invoke(
        "token",
        "create",
        "--user",
        "PAT@example.edu",
        "--purpose",
        "CI",
        "--expires-at",
        "2999-01-01",
        "--json",
    )
    assert made.exit_code == 0, made.output
    data = json.loads(made.output)
    assert set(data) == {"id", "token", "token_hint", "user_id", "purpose", "expires_at"}
    assert data["user_id"] == person.id and data["token_hint"] == data["token"][:5]
    assert data["expires_at"] == "2999-01-01T00:00:00Z"
    assert me(client, data["token"]).json()["name"] == "Pat Teacher"

    listed = invoke("token", "list", "--user", "pat@example.edu", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.output)
    assert [row["visible_token"] for row in rows] == [data["token"][:5] + "..."]
    assert data["token"] not in listed.output
    assert "CI" in invoke("token", "list", "--user", "pat@example.edu").output

    assert invoke("token", "revoke", str(data["id"])).exit_code == 0
    assert me(client, data["token"]).status_code == 401
    again = invoke("token", "revoke", str(data["id"]))
    assert again.exit_code == 1 and "no active token" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody@example.edu", "--purpose", "x"], "no user with login"),
        (["--user", "pat@example.edu", "--purpose", ""], "Purpose is required"),
        (["--user", "pat@example.edu", "--purpose", "x", "--expires-at", "2001-01-01"], "in the past"),
        (["--user", "pat@example.edu", "--purpose", "x", "--expires-at", "soon"], "not a date"),
        (
            ["--user", "pat@example.edu", "--purpose", "x", "--scope", "url:GET|/api/v1/users/:id"],
            "does not enforce",
        ),
    ],
)
def test_token_create_refuses_bad_input(cli_env, directory: Directory, args, message) -> None:
    directory.user(login="pat@example.edu", name="Pat Teacher")
    before = token_count(directory)
    result = invoke("token", "create", *args)
    assert result.exit_code == 1 and message in result.output
    assert token_count(directory) == before


def test_revoke_refuses_what_is_not_a_token(cli_env) -> None:
    for raw in ("abc", "99999999999999999999999", "42"):
        result = invoke("token", "revoke", raw)
        assert result.exit_code == 1 and "no active token" in result.output


def test_a_seeded_token_works_and_loading_again_restores_it(cli_env, client, tmp_path, directory) -> None:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(SEED)
    loaded = invoke("seed", str(seed_file), "--json")
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["access_tokens"][0]["token_hint"] == SEEDED[:5]
    assert me(client, SEEDED).json()["name"] == "Pat Teacher"
    stored = directory.query(select(AccessToken.token_digest, AccessToken.token_hint))
    assert SEEDED not in str(stored)  # only its digest
    client.delete(f"/api/v1/users/self/tokens/{SEEDED[:5]}", headers=bearer(SEEDED))
    assert me(client, SEEDED).status_code == 401
    assert invoke("seed", str(seed_file)).exit_code == 0
    assert me(client, SEEDED).status_code == 200
    assert token_count(directory) == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('login = "nobody@example.edu"\npurpose = "p"\ntoken = "' + "a" * 64 + '"', "no user with login"),
        ('login = "pat@example.edu"\npurpose = "p"\ntoken = "short"', "16 to 256"),
        (
            'login = "pat@example.edu"\npurpose = "p"\ntoken = "' + "b" * 64 + '"\nexpires_at = 2001-01-01',
            "in the past",
        ),
        ('login = "pat@example.edu"\ntoken = "' + "c" * 64 + '"', "purpose must be a string"),
    ],
)
def test_a_bad_seeded_token_loads_nothing(cli_env, tmp_path, directory, entry, message) -> None:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(
        '[[users]]\nlogin = "pat@example.edu"\npassword = "pw-0123"\nname = "Pat"\n\n[[access_tokens]]\n'
        + entry
    )
    result = invoke("seed", str(seed_file))
    assert result.exit_code == 1 and message in result.output
    assert token_count(directory) == 0


def test_an_emulator_reset_restores_the_same_seeded_token(settings: Settings) -> None:
    emulator_settings = settings.model_copy(update={"emulator": True, "emulator_seed": None})
    with emulator_client(emulator_settings) as emulator:
        assert (
            emulator.post(
                "/_emulator/seed", content=SEED, headers={"Content-Type": "application/toml"}
            ).status_code
            == 200
        )
        assert me(emulator, SEEDED).status_code == 200
        emulator.delete(f"/api/v1/users/self/tokens/{SEEDED[:5]}", headers=bearer(SEEDED))
        assert me(emulator, SEEDED).status_code == 401
        for _ in range(2):  # the first reset seeds again, the second copies the seeded rows back
            assert emulator.post("/_emulator/reset").status_code == 200
            assert me(emulator, SEEDED).json()["name"] == "Pat Teacher"
            emulator.delete(f"/api/v1/users/self/tokens/{SEEDED[:5]}", headers=bearer(SEEDED))
