"""Fixtures for the Canvas conformance tests: a developer key and a user, and the app under
other settings (strict profile, an https public URL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from lmsauth.app import create_app
from lmsauth.settings import Profile, Settings
from tests.conftest import Directory, Key, Person


@pytest.fixture
def key(directory: Directory) -> Key:
    """A developer key with the default redirect URI, made in the test's database."""
    return directory.key()


@pytest.fixture
def user(directory: Directory) -> Person:
    return directory.user()


@pytest.fixture
def app_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Build the app with some settings changed; ``app_client(profile=Profile.strict)``."""
    opened: list[TestClient] = []

    def build(base_url: str = "http://testserver", **changes: Any) -> TestClient:
        test_client = TestClient(
            create_app(settings.model_copy(update=changes)), base_url=base_url, follow_redirects=False
        )
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield build
    for test_client in opened:
        test_client.__exit__(None, None, None)


@pytest.fixture
def strict_client(app_client: Callable[..., TestClient]) -> TestClient:
    return app_client(profile=Profile.strict)
