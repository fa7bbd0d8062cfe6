"""Fixtures every test group shares: a migrated database per test, the app in-process, a live
server on a real port, and helpers that create users and developer keys.

Each test gets its own migrated database, so tests never see each other's rows: by default a
copy of a migrated SQLite file; with ``LMSAUTH_TEST_DATABASE_URL`` (a PostgreSQL URL, e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) the pytest-xdist worker's own database,
copied once from a migrated template and emptied after each test. With
``LMSAUTH_TEST_REDIS_URL`` every test's settings also name that Redis, under a namespace of
the test's own. A backend named by either variable that cannot be reached fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import asyncpg
import pytest
import uvicorn
from argon2 import PasswordHasher
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

import lmsauth.models  # noqa: F401  (every table, for emptying the PostgreSQL database)
from lmsauth.app import create_app
from lmsauth.canvas import admin
from lmsauth.canvas import context as canvas_context
from lmsauth.canvas.keys import service as keys_service
from lmsauth.core import clock, secrets
from lmsauth.core.db import Base, Database
from lmsauth.core.keys import KeyRing
from lmsauth.migrations import upgrade
from lmsauth.settings import Settings
from lmsauth.testing import free_port

TEST_SECRET_KEY = "test-secret-key-not-for-production-0123456789"
T = TypeVar("T")
TEST_DATABASE_URL = os.environ.get("LMSAUTH_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("LMSAUTH_TEST_REDIS_URL", "")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (``./scripts/test``) starts half again as many workers as there are cores:
    many tests spend their time waiting (on ``lmsauth serve`` and CLI subprocesses starting,
    servers on loopback, real-time expiries), and with one worker per core a third of the
    cores' time went unused. Measured on two cores, over SQLite: 7 min 13 s with 2 workers,
    5 min 31 s with 3, 5 min 20 s with 4; over PostgreSQL and Redis: 7 min 40 s with 2, 6 min
    35 s with 3. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + cores // 2


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file with its signing keys, copied for each test: migrating and
    generating an RSA key for every test would be most of the suite's time."""
    folder = tmp_path_factory.mktemp("template")
    settings = Settings(data_dir=folder, secret_key=TEST_SECRET_KEY)
    upgrade(settings)

    asyncio.run(_add_signing_key(settings.resolved_database_url))
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


class PostgresDatabases:
    """This worker's databases on the server ``LMSAUTH_TEST_DATABASE_URL`` names (managed
    through its database, ``test``): a migrated template with a signing key, made once, and
    from it one working database that each test gets empty. Emptying it (DELETE from every
    table, the template's signing keys put back, sequences restarted: ~15 ms) is far cheaper
    than ``CREATE DATABASE ... TEMPLATE`` per test (~0.5 s, WAL-logged and fsynced)."""

    def __init__(self, url: str, worker: str) -> None:
        self.url = make_url(url)
        if self.url.get_backend_name() != "postgresql":
            raise pytest.UsageError(f"LMSAUTH_TEST_DATABASE_URL must be a PostgreSQL URL, not {url!r}")
        # The process id keeps two runs on one server (two engineers, CI) apart.
        self.prefix = f"lmsauth_t_{worker}_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self.working = f"{self.prefix}_work"
        self._signing_keys: list[asyncpg.Record] = []
        self._sequences: list[tuple[str, int]] | None = None  # name, start: read once

    def url_of(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _dsn(self, name: str | None = None) -> str:
        url = self.url.set(drivername="postgresql")
        return (url.set(database=name) if name else url).render_as_string(hide_password=False)

    def _admin(self, *statements: str) -> None:
        async def work() -> None:
            connection = await asyncpg.connect(self._dsn(), timeout=10)
            try:
                for statement in statements:
                    await connection.execute(statement)
            finally:
                await connection.close()

        _in_own_loop(work)

    def start(self) -> None:
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{self.template}"', f'CREATE DATABASE "{self.template}"')
        except (OSError, asyncpg.PostgresError) as exc:
            raise RuntimeError(
                f"LMSAUTH_TEST_DATABASE_URL={TEST_DATABASE_URL} asks for PostgreSQL, which cannot be "
                f"reached: {exc!r}"
            ) from exc
        url = self.url_of(self.template)
        upgrade(Settings(database_url=url, secret_key=TEST_SECRET_KEY))
        _in_own_loop(lambda: _add_signing_key(url))

        async def snapshot() -> list[asyncpg.Record]:
            connection = await asyncpg.connect(self._dsn(self.template), timeout=10)
            try:
                return list(await connection.fetch("SELECT * FROM signing_keys"))
            finally:
                await connection.close()

        self._signing_keys = _in_own_loop(snapshot)
        self._admin(f'CREATE DATABASE "{self.working}" TEMPLATE "{self.template}"')

    def stop(self) -> None:
        self.drop(self.working)
        self.drop(self.template)

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def empty_working(self) -> None:
        """Back to the template's rows; if anything holds a lock past 5 s, a new copy.

        ~15 ms a test where it took ~30: the deletes go as one script, and each sequence goes
        back to its start with ``setval(..., false)`` (``ALTER SEQUENCE ... RESTART`` gives each
        a new file: 14 ms for the 25). ``setval`` is not rolled back with the transaction, which
        changes nothing here: a failure makes a new copy."""
        tables = [table.name for table in reversed(Base.metadata.sorted_tables)]

        async def work() -> None:
            connection = await asyncpg.connect(self._dsn(self.working), timeout=10)
            try:
                if self._sequences is None:
                    self._sequences = [
                        (str(row[0]), int(row[1]))
                        for row in await connection.fetch(
                            "SELECT sequencename, start_value FROM pg_sequences WHERE schemaname = 'public'"
                        )
                    ]
                restarts = ", ".join(
                    f"setval('\"{name}\"', {start}, false)" for name, start in self._sequences
                )
                script = [
                    "BEGIN",
                    "SET LOCAL lock_timeout = '5s'",
                    # No triggers: the change capture of exported tables would log the deletes.
                    "SET LOCAL session_replication_role = 'replica'",
                    *(f'DELETE FROM "{table}"' for table in tables),
                    *([f"SELECT {restarts}"] if restarts else []),
                ]
                await connection.execute(";\n".join(script))
                try:
                    if self._signing_keys:
                        await connection.copy_records_to_table(
                            "signing_keys",
                            records=[tuple(row) for row in self._signing_keys],
                            columns=list(self._signing_keys[0].keys()),
                        )
                    await connection.execute("COMMIT")
                except BaseException:
                    await connection.execute("ROLLBACK")
                    raise
            finally:
                connection.terminate()  # nothing is pending: no need to wait for the goodbye

        try:
            _in_own_loop(work)
        except (OSError, asyncpg.PostgresError):
            self.drop(self.working)
            self._admin(f'CREATE DATABASE "{self.working}" TEMPLATE "{self.template}"')


def _in_own_loop(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(work())`` in a thread of its own: fixtures tear down inside tests' running
    loops too (Playwright's sync API runs one in the main thread)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(work()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


async def _add_signing_key(url: str) -> None:
    """The key rings the app loads at start (the main one and the LTI key set, with its future
    key), made once into the template: an RSA key per test would cost ~0.1 s each."""
    db = Database(url)
    try:
        await KeyRing(db, TEST_SECRET_KEY).load()
        await KeyRing(db, TEST_SECRET_KEY, ring="lti", keep_future=True).load()
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def postgres_databases(worker_id: str) -> Iterator[PostgresDatabases]:
    """This worker's PostgreSQL databases (``LMSAUTH_TEST_DATABASE_URL`` only)."""
    databases = PostgresDatabases(TEST_DATABASE_URL, worker_id)
    databases.start()
    try:
        yield databases
    finally:
        databases.stop()


@pytest.fixture(scope="session")
def redis_reachable() -> str:
    """``LMSAUTH_TEST_REDIS_URL``, checked once: an unreachable Redis fails the run."""
    connection = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    try:
        connection.ping()
    except RedisError as exc:
        raise RuntimeError(
            f"LMSAUTH_TEST_REDIS_URL={TEST_REDIS_URL} asks for Redis, which cannot be reached: {exc!r}"
        ) from exc
    finally:
        connection.close()
    return TEST_REDIS_URL


def _forget_namespace(url: str, namespace: str) -> None:
    connection = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        names = list(connection.scan_iter(match=f"{namespace}:*", count=1000))
        if names:
            connection.delete(*names)
    finally:
        connection.close()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """The test's settings: its own database (SQLite copy or PostgreSQL database) and, with
    ``LMSAUTH_TEST_REDIS_URL``, Redis. The environment names the same database and Redis, so
    the CLI and ``lmsauth serve`` started by a test use them too."""
    extra: dict[str, Any] = {}
    postgres: PostgresDatabases | None = None
    if TEST_DATABASE_URL:
        postgres = request.getfixturevalue("postgres_databases")
        extra["database_url"] = postgres.url_of(postgres.working)
        monkeypatch.setenv("LMSAUTH_DATABASE_URL", extra["database_url"])
    else:
        shutil.copy(request.getfixturevalue("template_db"), tmp_path / "lmsauth.db")
    if TEST_REDIS_URL:
        extra["redis_url"] = request.getfixturevalue("redis_reachable")
        extra["redis_namespace"] = f"lmsauth-test-{tmp_path.name}-{os.getpid()}"
        monkeypatch.setenv("LMSAUTH_REDIS_URL", extra["redis_url"])
        monkeypatch.setenv("LMSAUTH_REDIS_NAMESPACE", extra["redis_namespace"])
    try:
        yield Settings(
            data_dir=tmp_path,
            secret_key=TEST_SECRET_KEY,
            public_url="http://testserver",
            cleanup_interval_seconds=3600,
            **extra,
        )
    finally:
        if TEST_REDIS_URL:
            _forget_namespace(extra["redis_url"], extra["redis_namespace"])
        if postgres is not None:
            postgres.empty_working()


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
            key, secret = await keys_service.save_developer_key(
                session, name=name, redirect_uris=uris, **extra
            )
            assert secret is not None
            return Key(key.client_id, secret, uris)

        result: Key = run(self._in_session(work))
        return result

    def set_key_state(self, client_id: str, state: str) -> None:
        async def work(session: Any) -> None:
            await keys_service.set_developer_key_state(session, client_id, state)

        run(self._in_session(work))

    def query(self, statement: Any) -> list[Any]:
        async def work(session: Any) -> list[Any]:
            return list((await session.execute(statement)).all())

        result: list[Any] = run(self._in_session(work))
        return result


@pytest.fixture
def directory(settings: Settings) -> Directory:
    return Directory(settings)


_RUNNING_APPS: weakref.WeakKeyDictionary[Any, anyio.from_thread.BlockingPortal] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def _portal_of_running_app(self: TestClient) -> Generator[anyio.from_thread.BlockingPortal, None, None]:
    """Starlette's ``TestClient._portal_factory``, except that a second client over the app of
    ``client`` (``TestClient(client.app)``) sends its requests into that app's event loop
    instead of a new loop per request: asyncpg's connections belong to the loop that opened
    them, so a pool used from two loops breaks (SQLite's driver did not mind)."""
    shared = self.portal or _RUNNING_APPS.get(self.app)
    if shared is not None:
        yield shared
    else:
        with anyio.from_thread.start_blocking_portal(**self.async_backend) as portal:
            yield portal


@pytest.fixture(autouse=True, scope="session")
def _share_running_apps_loop() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TestClient, "_portal_factory", _portal_of_running_app)
        yield


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process (lifespan included), redirects not followed."""
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        assert test_client.portal is not None
        _RUNNING_APPS[app] = test_client.portal
        yield test_client


@dataclass
class LiveServer:
    url: str
    settings: Settings


@contextlib.contextmanager
def serving(settings: Settings, **changes: Any) -> Iterator[LiveServer]:
    """The app on a real loopback port (uvicorn in a thread), with ``changes`` to ``settings``
    and its ``public_url`` on that port, for as long as the block runs."""
    port = free_port()
    settings = settings.model_copy(update={**changes, "public_url": f"http://127.0.0.1:{port}"})
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


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app on a real port (uvicorn in a thread), for real HTTP clients, over the same
    database as the test's ``settings`` and ``directory``.

    It runs in this process so that tests can move ``core.clock`` under it.
    """
    with serving(settings) as server:
        yield server


@pytest.fixture(scope="module")
def chromium(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Headless Chromium for a module's browser tests (``tests/browsers.py``). Playwright's
    sync API keeps an event loop running in this thread, where ``asyncio.run`` then fails."""
    from tests.browsers import chromium_browser  # playwright is loaded by browser tests only

    # The backends' session fixtures run asyncio.run: before the browser, never under it.
    request.getfixturevalue("postgres_databases" if TEST_DATABASE_URL else "template_db")
    if TEST_REDIS_URL:
        request.getfixturevalue("redis_reachable")
    with chromium_browser() as browser:
        yield browser
