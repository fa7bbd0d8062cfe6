"""The README's curl flow, run as written against a live server."""

from __future__ import annotations

import json
import subprocess

from tests.identity.helpers import make_client


def test_readme_curl_flow(live_server) -> None:
    credentials = make_client(live_server.settings, principal="inst-1")
    login = subprocess.run(
        [
            "curl",
            "-s",
            "-S",
            "--max-time",
            "10",
            f"{live_server.url}/ids/auth/login",
            "--user",
            f"{credentials.client_id}:{credentials.client_secret}",
            "--data-urlencode",
            "grant_type=client_credentials",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    body = json.loads(login.stdout)
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    tables = subprocess.run(
        [
            "curl",
            "-s",
            "-S",
            "--max-time",
            "10",
            "-H",
            f"Authorization: Bearer {body['access_token']}",
            f"{live_server.url}/dap/query/canvas/table",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert "users" in json.loads(tables.stdout)["tables"]
