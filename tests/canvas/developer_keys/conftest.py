"""What the developer-key tests share: an admin and a non-admin, each with an access token
(of a key made by the directory, bound on), and the tables' row counts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from lmsauth.canvas.models import AccessToken, DeveloperKey
from tests.canvas.support import Caller, issue_tokens
from tests.conftest import Directory, Key

ADMIN = {"login": "admin@example.edu", "password": "admin pass phrase", "name": "Ada Admin"}


@pytest.fixture
def api_key(directory: Directory) -> Key:
    """The key the callers' own tokens belong to."""
    return directory.key(name="Admin Tool")


@pytest.fixture
def admin(client: Any, directory: Directory, api_key: Key) -> Caller:
    person = directory.user(admin=True, **ADMIN)
    client.cookies.clear()
    token = issue_tokens(client, api_key, person)["access_token"]
    client.cookies.clear()
    return Caller(person, token)


@pytest.fixture
def student(client: Any, directory: Directory, api_key: Key) -> Caller:
    person = directory.user()
    client.cookies.clear()
    token = issue_tokens(client, api_key, person)["access_token"]
    client.cookies.clear()
    return Caller(person, token)


def snapshot(directory: Directory) -> list[Any]:
    """Every developer key and token row, to show that a refused request changed nothing."""
    keys = directory.query(select(DeveloperKey).order_by(DeveloperKey.id))
    tokens = directory.query(select(AccessToken.id, AccessToken.workflow_state).order_by(AccessToken.id))
    counted = directory.query(select(func.count()).select_from(DeveloperKey))
    return [
        [
            (k.id, k.name, k.workflow_state, k.binding_state, k.scopes, k.redirect_uris, k.updated_at)
            for (k,) in keys
        ],
        tokens,
        counted,
    ]
