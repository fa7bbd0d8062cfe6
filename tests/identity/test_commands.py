"""``lmsauth identity-client create|list|revoke``, against the same database the app serves."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from lmsauth.cli import main
from tests.identity.helpers import Credentials, login


@pytest.fixture
def cli(settings):
    runner = CliRunner()
    env = {"LMSAUTH_DATA_DIR": str(settings.data_dir), "LMSAUTH_SECRET_KEY": settings.secret_key}

    def invoke(*args: str):
        return runner.invoke(main, ["identity-client", *args], env=env, catch_exceptions=False)

    return invoke


def test_create_prints_id_and_secret_once_and_they_log_in(cli, client) -> None:
    result = cli(
        "create",
        "--name",
        "Warehouse",
        "--principal",
        "inst-9",
        "--partner",
        "acme",
        "--region",
        "eu-west-1",
        "--expires-in-days",
        "30",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert re.fullmatch(r"eu-west-1#[0-9a-f-]{36}", data["client_id"])
    assert data["scope"] == "dap principal:inst-9 partner:acme region:eu-west-1"
    assert data["active"] is True and data["service"] == "dap" and data["name"] == "Warehouse"
    assert data["expires_at"].endswith("Z")
    response = login(client, Credentials(data["client_id"], data["client_secret"]))
    assert response.status_code == 200, response.text

    listed = cli("list", "--json")
    assert listed.exit_code == 0
    [entry] = json.loads(listed.stdout)
    assert entry["client_id"] == data["client_id"]
    assert "client_secret" not in entry and data["client_secret"] not in listed.stdout


def test_create_without_json_prints_id_and_secret_lines(cli) -> None:
    result = cli("create", "--name", "N", "--principal", "P")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("client_id=us-east-1#") and lines[1].startswith("client_secret=")


def test_revoke_stops_login(cli, client) -> None:
    data = json.loads(cli("create", "--name", "N", "--principal", "P", "--json").stdout)
    result = cli("revoke", data["client_id"])
    assert result.exit_code == 0
    assert "revoked" in result.stderr
    assert login(client, Credentials(data["client_id"], data["client_secret"])).status_code == 401
    assert "revoked" in cli("list").stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--principal", "P", "--region", "mars"],
        ["--principal", "P", "--region", "US-EAST-1"],
        ["--principal", "has space"],
        ["--principal", ""],
        ["--principal", "P", "--partner", "a b"],
        ["--principal", "P", "--expires-in-days", "0"],
        ["--principal", "P", "--expires-in-days", "5000"],
    ],
)
def test_create_refuses_bad_input(cli, args: list[str]) -> None:
    result = cli("create", "--name", "N", *args, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error:" in result.stderr


def test_revoke_unknown_client_fails(cli) -> None:
    result = cli("revoke", "us-east-1#nope")
    assert result.exit_code == 1
    assert "no identity client" in result.stderr
