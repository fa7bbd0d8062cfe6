"""Real answers of the Access Tokens API and the profile pages validate against openapi.yaml."""

from __future__ import annotations

from tests.canvas.access_tokens.support import bearer, manual_token
from tests.canvas.support import sign_in
from tests.conftest import Directory
from tests.contract.conftest import conforms
from tests.flows import form_token

LIST = "/api/v1/users/{user_id}/user_generated_tokens"
MAKE = "/api/v1/users/{user_id}/tokens"
ONE = "/api/v1/users/{user_id}/tokens/{id}"


def test_api_answers_conform(client, directory: Directory) -> None:
    person = directory.user()
    other = directory.user(login="other@example.edu", name="Other Person")
    token = manual_token(directory, person)
    auth = bearer(token)
    conforms(client.get("/api/v1/users/self/user_generated_tokens", headers=auth), "GET", LIST)
    conforms(client.get(f"/api/v1/users/{other.id}/user_generated_tokens", headers=auth), "GET", LIST)
    conforms(client.get("/api/v1/users/self/user_generated_tokens?page=x", headers=auth), "GET", LIST)
    conforms(client.get("/api/v1/users/self/user_generated_tokens"), "GET", LIST)
    made = client.post("/api/v1/users/self/tokens", data={"token[purpose]": "p"}, headers=auth)
    conforms(made, "POST", MAKE)
    for data in ({}, {"token[purpose]": ""}, {"token[purpose]": "p", "token[expires_at]": "x"}):
        answer = client.post("/api/v1/users/self/tokens", data=data, headers=auth)
        assert answer.status_code == 400
        conforms(answer, "POST", MAKE)
    hint = made.json()["visible_token"][:5]
    conforms(client.get(f"/api/v1/users/self/tokens/{hint}", headers=auth), "GET", ONE)
    conforms(client.get("/api/v1/users/self/tokens/404", headers=auth), "GET", ONE)
    for data in ({"token[regenerate]": "1"}, {}, {"token[expires_at]": "2000-01-01"}):
        conforms(client.put(f"/api/v1/users/self/tokens/{hint}", data=data, headers=auth), "PUT", ONE)
    conforms(client.delete(f"/api/v1/users/{other.id}/tokens/1", headers=auth), "DELETE", ONE)
    conforms(client.delete(f"/api/v1/users/self/tokens/{token[:5]}", headers=auth), "DELETE", ONE)


def test_pages_conform(client, directory: Directory) -> None:
    conforms(client.get("/profile/settings"), "GET", "/profile/settings")
    person = directory.user()
    sign_in(client, person)
    manual_token(directory, person)
    settings = client.get("/profile/settings")
    conforms(settings, "GET", "/profile/settings")
    conforms(client.get("/profile/tokens/new"), "GET", "/profile/tokens/new")
    csrf = form_token(settings.text)
    for data in (
        {"authenticity_token": csrf, "purpose": "p"},
        {"authenticity_token": csrf},
        {"purpose": "p"},
    ):
        conforms(client.post("/profile/tokens", data=data), "POST", "/profile/tokens")
    conforms(client.get("/profile/tokens/1"), "GET", "/profile/tokens/{token_id}")
    conforms(client.get("/profile/tokens/99"), "GET", "/profile/tokens/{token_id}")
    regenerate = "/profile/tokens/{token_id}/regenerate"
    conforms(
        client.post("/profile/tokens/1/regenerate", data={"authenticity_token": csrf}), "POST", regenerate
    )
    conforms(client.post("/profile/tokens/1/regenerate", data={}), "POST", regenerate)
    delete = "/profile/tokens/{token_id}/delete"
    conforms(client.post("/profile/tokens/99/delete", data={"authenticity_token": csrf}), "POST", delete)
    conforms(client.post("/profile/tokens/1/delete", data={"authenticity_token": csrf}), "POST", delete)
