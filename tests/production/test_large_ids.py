"""Ids in requests that no row can have (past PostgreSQL's int4) are unknown, never errors:
PostgreSQL refuses such a comparison where SQLite finds nothing (``core.db.row_id``)."""

from __future__ import annotations

from tests.canvas.support import issue_tokens
from tests.conftest import Directory

HUGE = "99999999999"  # fits Canvas's 64-bit ids, not an int4 column


def test_a_user_id_past_int4_is_not_found(client, directory: Directory) -> None:
    user, key = directory.user(), directory.key()
    token = issue_tokens(client, key, user)["access_token"]
    response = client.get(f"/api/v1/users/{HUGE}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404, response.text


def test_a_client_id_past_int4_is_an_unknown_client(client) -> None:
    response = client.post(
        "/login/oauth2/token",
        data={"grant_type": "authorization_code", "client_id": HUGE, "client_secret": "x", "code": "x"},
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def test_a_tool_id_past_int4_is_not_found(client, directory: Directory) -> None:
    user, key = directory.user(), directory.key()
    token = issue_tokens(client, key, user)["access_token"]
    response = client.get(
        "/api/lti/accounts/self/jwt_token",
        params={"tool_id": HUGE},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 404, response.text


def test_the_cli_refuses_a_client_id_past_int4(settings, monkeypatch) -> None:
    from click.testing import CliRunner

    from lmsauth.cli import main

    monkeypatch.setenv("LMSAUTH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LMSAUTH_SECRET_KEY", settings.secret_key)
    result = CliRunner().invoke(main, ["developer-key", "deactivate", HUGE])
    assert result.exit_code == 1
    assert "no developer key" in result.output
