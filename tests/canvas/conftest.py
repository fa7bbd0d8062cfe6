"""Fixtures for the Canvas conformance tests: cheap password hashing, and the app under other
settings (strict profile, an https public URL)."""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from starlette.testclient import TestClient

from lmsauth.app import create_app
from lmsauth.canvas import context
from lmsauth.core import keys, secrets
from lmsauth.core.db import Database
from lmsauth.core.keys import KeyRing
from lmsauth.settings import Profile, Settings
from tests.conftest import TEST_SECRET_KEY


@pytest.fixture(scope="session")
def template_db(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared migrated template plus one signing key: otherwise every app start in these
    tests generates an RSA key, which is most of a test's set-up time."""
    folder = tmp_path_factory.mktemp("canvas-template")
    shutil.copy(template_db, folder / "lmsauth.db")
    settings = Settings(data_dir=folder, secret_key=TEST_SECRET_KEY)

    async def add_key() -> None:
        db = Database(settings.resolved_database_url)
        try:
            await KeyRing(db, TEST_SECRET_KEY).load()
        finally:
            await db.dispose()

    asyncio.run(add_key())
    return folder / "lmsauth.db"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its minimum cost: the tests sign in hundreds of times, and the cost
    parameters are not what they check (a hash records its own parameters when verified)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(secrets, "_hasher", hasher)
    monkeypatch.setattr(secrets, "_DUMMY_HASH", hasher.hash("not anyone's password"))


class _SerializationWithCachedLoad:
    """``cryptography``'s serialization module, but a PEM private key that was loaded (and
    validated) once is not loaded again: every app start in these tests loads the same key."""

    def __getattr__(self, name: str) -> Any:
        return getattr(serialization, name)

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def load_pem_private_key(data: bytes, password: bytes | None = None) -> Any:
        return serialization.load_pem_private_key(data, password=password)


_shared_templates = functools.lru_cache(maxsize=8)(context.templates)


@pytest.fixture(autouse=True)
def reuse_expensive_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds its own app; these two pieces of its set-up are pure functions of
    their input and cost more than a whole test otherwise: RSA key validation when the key
    ring loads, and compiling the page templates (one shared Jinja environment instead)."""
    monkeypatch.setattr(keys, "serialization", _SerializationWithCachedLoad())
    monkeypatch.setattr(context, "templates", _shared_templates)


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
