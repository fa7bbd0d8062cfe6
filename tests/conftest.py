"""Fixtures every test group shares: a migrated database per test, the app in-process, a live
server on a real port, and helpers that create users and developer keys.

Each test gets its own copy of a migrated SQLite file, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from lmsauth.app import create_app
from lmsauth.canvas import admin
from lmsauth.canvas import context as canvas_context
from lmsauth.core import clock, secrets
from lmsauth.core.db import Database
from lmsauth.core.keys import KeyRing
from lmsauth.migrations import upgrade
from lmsauth.settings import Settings

TEST_SECRET_KEY = "test-secret-key-not-for-production-0123456789"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file with a signing key, copied for each test: migrating and
    generating an RSA key for every test would be most of the suite's time."""
    folder = tmp_path_factory.mktemp("template")
    settings = Settings(data_dir=folder, secret_key=TEST_SECRET_KEY)
    upgrade(settings)

    async def add_signing_key() -> None:
        db = Database(settings.resolved_database_url)
        try:
            await KeyRing(db, TEST_SECRET_KEY).load()
        finally:
            await db.dispose()

    asyncio.run(add_signing_key())
    return folder / "lmsauth.db"


_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_CHEAP_DUMMY_HASH = _CHEAP_HASHER.hash("not anyone's password")
_shared_templates = functools.lru_cache(maxsize=8)(canvas_context.templates)


@pytest.fixture(autouse=True)
def cheap_setup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its minimum cost (tests sign in hundreds of times; a hash records its own
    parameters, so verification is unchanged) and one compiled set of page templates.
    A test marked ``real_password_hashing`` keeps the production parameters."""
    if request.node.get_closest_marker("real_password_hashing") is None:
        monkeypatch.setattr(secrets, "_hasher", _CHEAP_HASHER)
        monkeypatch.setattr(secrets, "_dummy_hash", lambda: _CHEAP_DUMMY_HASH)
    monkeypatch.setattr(canvas_context, "templates", _shared_templates)


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    shutil.copy(template_db, tmp_path / "lmsauth.db")
    return Settings(
        data_dir=tmp_path,
        secret_key=TEST_SECRET_KEY,
        public_url="http://testserver",
        cleanup_interval_seconds=3600,
    )


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    """Every test starts, and leaves, on real time."""
    clock.reset()
    yield
    clock.reset()


def run(coro: Any) -> Any:
    """Run a coroutine from a synchronous test."""
    return asyncio.run(coro)


@dataclass
class Key:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class Person:
    id: int
    login: str
    password: str
    name: str


class Directory:
    """Creates users and developer keys straight in the test's database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def _in_session(self, work: Any) -> Any:
        db = Database(self.settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                return await work(session)
        finally:
            await db.dispose()

    def user(
        self,
        login: str = "student@example.edu",
        password: str = "correct horse battery",
        name: str = "Sam Student",
        **extra: Any,
    ) -> Person:
        async def work(session: Any) -> Person:
            user, _ = await admin.upsert_user(session, login=login, password=password, name=name, **extra)
            return Person(user.id, login, password, name)

        result: Person = run(self._in_session(work))
        return result

    def key(
        self,
        redirect_uris: list[str] | None = None,
        name: str = "Test Integration",
        **extra: Any,
    ) -> Key:
        uris = redirect_uris or ["https://app.example.com/callback"]

        async def work(session: Any) -> Key:
            key, secret = await admin.save_developer_key(session, name=name, redirect_uris=uris, **extra)
            assert secret is not None
            return Key(key.client_id, secret, uris)

        result: Key = run(self._in_session(work))
        return result

    def set_key_state(self, client_id: str, state: str) -> None:
        async def work(session: Any) -> None:
            await admin.set_developer_key_state(session, client_id, state)

        run(self._in_session(work))

    def query(self, statement: Any) -> list[Any]:
        async def work(session: Any) -> list[Any]:
            return list((await session.execute(statement)).all())

        result: list[Any] = run(self._in_session(work))
        return result


@pytest.fixture
def directory(settings: Settings) -> Directory:
    return Directory(settings)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process (lifespan included), redirects not followed."""
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    settings: Settings


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app on a real port (uvicorn in a thread), for real HTTP clients, over the same
    database as the test's ``settings`` and ``directory``.

    It runs in this process so that tests can move ``core.clock`` under it.
    """
    port = free_port()
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
