"""The whole authorization-code flow in-process: the thread every other Canvas test pulls on."""

from __future__ import annotations

from tests.conftest import Directory
from tests.flows import code_for


def test_code_exchange_and_api_call(client, directory: Directory) -> None:
    key = directory.key()
    user = directory.user()
    code = code_for(client, key.client_id, key.redirect_uris[0], user.login, user.password, state="s1")
    assert len(code) == 128
    response = client.post(
        "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": key.redirect_uris[0],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["id"] == user.id
    me = client.get("/api/v1/users/self", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["name"] == user.name
