"""The ``lmsauth`` command as operators run it: a subprocess with its settings in the environment.

Each CLI start costs a second or more (imports, migrations), so the tests check the database
in-process where the CLI's output is not itself the subject.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from lmsauth.canvas.models import DeveloperKey, Login, User
from lmsauth.settings import Settings
from lmsauth.testing import ServeProcess
from tests.conftest import Directory
from tests.flows import code_for

LMSAUTH = str(Path(sys.executable).with_name("lmsauth"))
SCOPE = "url:GET|/api/v1/users/:id"


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any LMSAUTH_* setting, plus the data folder."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LMSAUTH_")}
    env["LMSAUTH_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def lmsauth(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LMSAUTH, *args], env=environment(data_dir), capture_output=True, text=True, timeout=60
    )


def lmsauth_in_process(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lmsauth ARGS`` run by click's ``CliRunner`` in this process, with the same environment
    as ``lmsauth`` (every other ``LMSAUTH_*`` variable unset while it runs): for the tests of
    what a verb does, which would otherwise pay a second of start-up per call. The process
    itself (entry point, exit status, stdout and stderr apart) is what this module's tests,
    which use ``lmsauth``, are for."""
    from click.testing import CliRunner

    from lmsauth.cli import main

    unset: dict[str, str | None] = {name: None for name in os.environ if name.startswith("LMSAUTH_")}
    ran = CliRunner().invoke(main, list(args), env={**unset, "LMSAUTH_DATA_DIR": str(data_dir)})
    if ran.exception is not None and not isinstance(ran.exception, SystemExit):
        raise ran.exception
    return subprocess.CompletedProcess(["lmsauth", *args], ran.exit_code, ran.stdout, ran.stderr)


def one_json_object(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Exactly one JSON object on stdout, and nothing else."""
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1, result.stdout
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def stored(data_dir: Path, statement: Any) -> list[Any]:
    return Directory(Settings(data_dir=data_dir)).query(statement)


# ---------------------------------------------------------------------------- users


def test_user_create_prints_one_object_and_refuses_a_duplicate(tmp_path: Path) -> None:
    args = [
        "user",
        "create",
        "--login",
        "ada@example.edu",
        "--password",
        "pw-123456",
        "--name",
        "Ada Lovelace",
    ]
    created = one_json_object(lmsauth(tmp_path, *args, "--json"))
    assert set(created) == {"id", "login", "name"}
    assert created["login"] == "ada@example.edu"
    assert created["name"] == "Ada Lovelace"
    assert isinstance(created["id"], int)

    again = lmsauth(tmp_path, *args[:-1], "Someone Else", "--json")
    assert again.returncode == 1
    assert again.stdout == ""
    assert "already exists" in again.stderr
    rows = stored(tmp_path, select(User.id, User.name))
    assert [tuple(row) for row in rows] == [(created["id"], "Ada Lovelace")]


def test_user_suspend_and_unsuspend_change_every_login_of_the_user(tmp_path: Path) -> None:
    args = [
        "user",
        "create",
        "--login",
        "ada@example.edu",
        "--password",
        "pw-123456",
        "--name",
        "Ada Lovelace",
    ]
    assert lmsauth(tmp_path, *args).returncode == 0
    suspended = lmsauth(tmp_path, "user", "suspend", "ADA@example.edu")
    assert suspended.returncode == 0, suspended.stderr
    assert "suspended" in suspended.stderr
    assert [tuple(row) for row in stored(tmp_path, select(Login.workflow_state))] == [("suspended",)]
    unsuspended = lmsauth(tmp_path, "user", "unsuspend", "ada@example.edu")
    assert unsuspended.returncode == 0, unsuspended.stderr
    assert [tuple(row) for row in stored(tmp_path, select(Login.workflow_state))] == [("active",)]
    unknown = lmsauth(tmp_path, "user", "suspend", "nobody@example.edu")
    assert unknown.returncode == 1
    assert "no user with login nobody@example.edu" in unknown.stderr


# ---------------------------------------------------------------------------- developer keys


def test_developer_key_create_list_and_deactivate(tmp_path: Path) -> None:
    created = one_json_object(
        lmsauth(
            tmp_path,
            "developer-key",
            "create",
            "--name",
            "Gradebook Sync",
            "--redirect-uri",
            "https://app.example.com/callback",
            "--redirect-uri",
            "https://app.example.com/other",
            "--scope",
            SCOPE,
            "--require-scopes",
            "--trusted",
            "--json",
        )
    )
    assert created["client_id"].isdigit()
    assert len(created["client_secret"]) == 64
    assert created["name"] == "Gradebook Sync"
    assert created["redirect_uris"] == ["https://app.example.com/callback", "https://app.example.com/other"]
    assert created["scopes"] == [SCOPE]
    assert created["require_scopes"] is True
    assert created["trusted"] is True
    assert created["workflow_state"] == "active"

    listed = lmsauth(tmp_path, "developer-key", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert [key["client_id"] for key in keys] == [created["client_id"]]
    assert "client_secret" not in keys[0]  # shown once, at creation

    deactivated = lmsauth(tmp_path, "developer-key", "deactivate", created["client_id"])
    assert deactivated.returncode == 0, deactivated.stderr
    assert "inactive" in deactivated.stderr
    assert stored(tmp_path, select(DeveloperKey.workflow_state)) == [("inactive",)]


def test_developer_key_with_an_unknown_scope_is_refused(tmp_path: Path) -> None:
    result = lmsauth(
        tmp_path,
        "developer-key",
        "create",
        "--name",
        "N",
        "--redirect-uri",
        "https://app.example.com/callback",
        "--scope",
        "url:GET|/api/v1/users/:id",
        "--scope",
        "read everything",
        "--json",
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "read everything" in result.stderr
    assert stored(tmp_path, select(func.count()).select_from(DeveloperKey)) == [(0,)]


# ---------------------------------------------------------------------------- seed and db


SEED = """
[account]
name = "Seeded University"

[[users]]
login = "teacher@example.edu"
password = "teacher-password"
name = "Terry Teacher"

[[users]]
login = "student@example.edu"
password = "student-password"
name = "Sam Student"

[[developer_keys]]
client_id = "10000000000042"
name = "Fixed Id App"
client_secret = "fixed-secret-0123456789abcdef"
redirect_uris = ["https://fixed.example.com/callback"]

[[developer_keys]]
name = "Named App"
redirect_uris = ["https://named.example.com/callback"]
scopes = ["url:GET|/api/v1/users/:id"]
require_scopes = true
"""


def test_seed_twice_is_idempotent(tmp_path: Path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    first = one_json_object(lmsauth(tmp_path, "seed", str(seed), "--json"))
    second = one_json_object(lmsauth(tmp_path, "seed", str(seed), "--json"))

    def ids(result: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        return [u["id"] for u in result["users"]], [k["client_id"] for k in result["developer_keys"]]

    assert ids(first) == ids(second)
    assert ids(first)[1][0] == "10000000000042"
    assert [u["created"] for u in first["users"]] == [True, True]
    assert [u["created"] for u in second["users"]] == [False, False]
    assert stored(tmp_path, select(func.count()).select_from(User)) == [(2,)]
    assert stored(tmp_path, select(func.count()).select_from(Login)) == [(2,)]
    assert stored(tmp_path, select(func.count()).select_from(DeveloperKey)) == [(2,)]


def test_seed_with_an_error_writes_nothing(tmp_path: Path) -> None:
    seed = tmp_path / "seed.toml"
    # The users come first in the file and are written first: the bad scope must undo them.
    seed.write_text(SEED.replace('scopes = ["url:GET|/api/v1/users/:id"]', 'scopes = ["nonsense"]'))
    result = lmsauth(tmp_path, "seed", str(seed), "--json")
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert "nonsense" in result.stderr
    assert stored(tmp_path, select(func.count()).select_from(User)) == [(0,)]


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    result = lmsauth(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "head" in result.stderr
    version = stored(tmp_path, text("SELECT version_num FROM alembic_version"))
    assert len(version) == 1
    assert stored(tmp_path, select(func.count()).select_from(DeveloperKey)) == [(0,)]


# ---------------------------------------------------------------------------- serve


class Server(ServeProcess):
    """``lmsauth serve`` over a data folder of its own (``lmsauth.testing``'s one subprocess
    helper), logging at ``info``."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(args, environment(data_dir, LMSAUTH_LOG_LEVEL="info", **(env or {})))

    @property
    def stderr(self) -> str:
        return self.output

    def wait_until_up(self, timeout: float = 45) -> None:
        self.wait_until_answers("/login/oauth2/jwks", timeout)

    def stop(self, timeout: float = 20) -> int:
        return super().stop(timeout)


@pytest.fixture(scope="module", autouse=True)
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """Started with the module, so that its start-up overlaps the tests above; the tests that
    use it wait for it."""
    data_dir = tmp_path_factory.mktemp("serve")
    server = Server(data_dir, "--demo")
    try:
        yield server, data_dir
    finally:
        server.kill()


@pytest.mark.server
def test_serve_demo_prints_the_demo_key_and_login(demo_server: tuple[Server, Path]) -> None:
    server, _ = demo_server
    server.wait_until_up()
    assert "client_id=10000000000001" in server.stderr
    assert "client_secret=demo-client-secret-0123456789abcdef" in server.stderr
    assert "login=student@example.edu password=student-password" in server.stderr
    assert f"lmsauth serving on {server.url}" in server.stderr


@pytest.mark.server
def test_a_key_created_by_the_cli_works_on_the_running_server(demo_server: tuple[Server, Path]) -> None:
    server, data_dir = demo_server
    server.wait_until_up()
    key = one_json_object(
        lmsauth(
            data_dir,
            "developer-key",
            "create",
            "--name",
            "Made While Running",
            "--redirect-uri",
            "https://app.example.com/callback",
            "--json",
        )
    )
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=10) as browser:
        code = code_for(
            browser,
            key["client_id"],
            "https://app.example.com/callback",
            "student@example.edu",
            "student-password",
        )
    token = httpx.post(
        f"{server.url}/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": key["client_id"],
            "client_secret": key["client_secret"],
            "code": code,
            "redirect_uri": "https://app.example.com/callback",
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    me = httpx.get(
        f"{server.url}/api/v1/users/self",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "Sam Student"

    # And a key deactivated by the CLI stops working there at once.
    assert lmsauth(data_dir, "developer-key", "deactivate", key["client_id"]).returncode == 0
    refused = httpx.get(
        f"{server.url}/api/v1/users/self",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert refused.status_code == 401


@pytest.mark.server
def test_sigterm_stops_the_server_cleanly(tmp_path: Path) -> None:
    """A server of its own, so the module's shared demo server serves the other tests whatever
    the order. uvicorn shuts down gracefully, then re-raises the signal, so the exit status is
    0 or "terminated by SIGTERM"."""
    server = Server(tmp_path)
    try:
        server.wait_until_up()
        assert server.stop() in (0, -signal.SIGTERM), server.stderr
    finally:
        server.kill()
    assert "Traceback" not in server.stderr
    assert "Application shutdown complete" in server.stderr
    assert "Finished server process" in server.stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/login/oauth2/jwks", timeout=2)
