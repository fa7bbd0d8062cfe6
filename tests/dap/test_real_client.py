"""The real ``dap`` CLI (instructure-dap-client 2.3.1, from PyPI) against a running server.

It logs in at /ids/auth/login, decodes our replies with its strict deserializer, and writes
the schema files; nothing is mocked. ``DAP_TRACKING=false`` keeps it off the internet, and
every run is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmsauth.dap import tables
from tests.identity.helpers import Credentials, make_client

TABLES = ["access_tokens", "accounts", "courses", "developer_keys", "enrollments", "pseudonyms", "users"]


def dap(live_server, credentials: Credentials, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DAP_")}
    env.update(
        DAP_TRACKING="false",
        DAP_CLIENT_ID=credentials.client_id,
        DAP_CLIENT_SECRET=credentials.client_secret,
    )
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "dap", "--base-url", live_server.url, "--non-interactive", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def credentials(live_server) -> Credentials:
    return make_client(live_server.settings, principal="inst-1")


def test_dap_list(live_server, credentials, tmp_path) -> None:
    result = dap(live_server, credentials, "list", "--namespace", "canvas", cwd=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == TABLES


def test_dap_schema_users(live_server, credentials, tmp_path) -> None:
    out = tmp_path / "schemas"
    result = dap(
        live_server,
        credentials,
        "schema",
        "--namespace",
        "canvas",
        "--table",
        "users",
        "--output-directory",
        str(out),
        cwd=tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    written = json.loads((out / "users_schema_version_1.json").read_text())
    users = tables.find_table("canvas", "users")
    assert users is not None
    assert written == tables.versioned_schema("canvas", users)


def test_dap_with_a_wrong_secret_fails_with_our_message(live_server, credentials, tmp_path) -> None:
    wrong = Credentials(credentials.client_id, credentials.client_secret[:-1] + "!")
    result = dap(live_server, wrong, "list", "--namespace", "canvas", cwd=tmp_path / "run")
    assert result.returncode == 5  # errno.EIO: the CLI's code for an operation error
    assert "Invalid client ID or secret." in result.stdout + result.stderr
