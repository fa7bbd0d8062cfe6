"""Fixtures for the Commons tests: a consumer and a Canvas tool for it, a user who can sign in
to Canvas, cheap password hashing, and a template database that already has a signing key."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from lmsauth.core import secrets
from lmsauth.core.db import Database
from lmsauth.core.keys import KeyRing
from lmsauth.settings import Settings
from tests.commons.support import Lti
from tests.conftest import TEST_SECRET_KEY, Directory, LiveServer


@pytest.fixture(scope="session")
def template_db(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared template plus one signing key, so no test waits for an RSA key."""
    folder = tmp_path_factory.mktemp("commons-template")
    shutil.copy(template_db, folder / "lmsauth.db")

    async def add_key() -> None:
        db = Database(Settings(data_dir=folder, secret_key=TEST_SECRET_KEY).resolved_database_url)
        try:
            await KeyRing(db, TEST_SECRET_KEY).load()
        finally:
            await db.dispose()

    asyncio.run(add_key())
    return folder / "lmsauth.db"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its minimum cost: what these tests check is not the password hash."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(secrets, "_hasher", hasher)
    monkeypatch.setattr(secrets, "_DUMMY_HASH", hasher.hash("not anyone's password"))


@pytest.fixture
def lti(directory: Directory, settings: Settings) -> Lti:
    """Commons at http://testserver/commons, installed in Canvas as a public tool."""
    return Lti.install(directory, settings)


@pytest.fixture
def live_lti(live_server: LiveServer) -> Lti:
    return Lti.install(Directory(live_server.settings), live_server.settings)
