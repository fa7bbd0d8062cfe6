"""People tests: an account admin and a plain user, each with an access token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.canvas.support import issue_tokens
from tests.conftest import Directory, Key, Person

ADMIN_PASSWORD = "admin password 1"


@pytest.fixture
def token_for(client: TestClient, directory: Directory) -> Callable[[Person], str]:
    """An access token of ``person``, made through the OAuth flow in a browser of its own."""
    key = directory.key()

    def make(person: Person) -> str:
        browser = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
        token: str = issue_tokens(browser, key, person)["access_token"]
        return token

    return make


@pytest.fixture
def admin(directory: Directory) -> Person:
    return directory.user(login="admin@example.edu", password=ADMIN_PASSWORD, name="Ada Admin", admin=True)


@pytest.fixture
def plain(directory: Directory) -> Person:
    return directory.user(login="sam@example.edu", name="Sam Student")


def auth(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}


__all__ = ["Key"]
