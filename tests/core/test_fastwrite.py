"""``core.fastwrite`` through ``canvas.exchange``: rows written on the driver must read back
through the ORM exactly as rows the ORM wrote (types included), a lost compare-and-set must
write nothing, and a failed statement must roll its whole transaction back."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import sqlite

from lmsauth.canvas import exchange
from lmsauth.canvas.models import AccessToken, AuthorizationCode, DeveloperKey, User, local_id
from lmsauth.canvas.tokens import ACCESS_TOKEN_LIFETIME, issue_code
from lmsauth.core import clock, fastwrite, secrets
from lmsauth.core.db import Database, UTCDateTime
from lmsauth.core.fastwrite import FastWriter, Write, WriteQuery
from lmsauth.settings import Settings
from tests.conftest import Directory

SCOPES = ["url:GET|/api/v1/users/:id"]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    await database.dispose()


@pytest.fixture
def owner(directory: Directory) -> tuple[int, int]:
    """A user and a developer key (made before the test's event loop runs)."""
    return directory.user().id, local_id(int(directory.key().client_id))


async def _code(db: Database, owner: tuple[int, int]) -> tuple[str, exchange.Found[exchange.Code]]:
    user_id, key_id = owner
    async with db.session(write=True) as session:
        key = await session.get(DeveloperKey, key_id)
        assert key is not None
        code = await issue_code(
            session,
            key=key,
            user_id=user_id,
            pending={"scopes": SCOPES, "redirect_uri": "https://a.example/cb"},
        )
    found = await exchange.find_code(db, key_id, code)
    assert found.key is not None and found.grant is not None and found.user is not None
    return code, found


async def _tokens(db: Database) -> list[AccessToken]:
    async with db.session() as session:
        return list(await session.scalars(select(AccessToken).order_by(AccessToken.id)))


async def test_a_token_written_on_the_driver_reads_back_as_the_orms(
    db: Database, owner: tuple[int, int]
) -> None:
    _, found = await _code(db, owner)
    assert found.key is not None and found.grant is not None
    issued = await exchange.issue_from_code(db, found.key, found.grant, owner[0], replace_tokens=False)
    assert issued is not None and issued.access_token is not None and issued.refresh_token is not None
    (row,) = await _tokens(db)
    assert row.token_digest == secrets.digest(issued.access_token)
    assert row.refresh_digest == secrets.digest(issued.refresh_token)
    assert row.token_hint == issued.access_token[:5]
    assert row.scopes == SCOPES and row.remember_access is False and row.workflow_state == "active"
    assert row.purpose == found.key.name and row.authorization_code_id == found.grant.id
    assert row.created_at.tzinfo is UTC and row.expires_at is not None
    assert row.expires_at - row.created_at == ACCESS_TOKEN_LIFETIME
    assert row.family_id is None and row.refresh_used_at is None and row.last_used_at is None
    async with db.session() as session:
        redeemed_at = await session.scalar(select(AuthorizationCode.redeemed_at))
    assert isinstance(redeemed_at, datetime) and redeemed_at.tzinfo is UTC


@pytest.mark.parametrize("replace_tokens", [False, True])
async def test_a_lost_claim_writes_nothing(
    db: Database, owner: tuple[int, int], replace_tokens: bool
) -> None:
    """The second exchange of one code read before the first wrote: nothing of it is written
    (with ``replace_tokens`` the writes are a transaction of three statements everywhere)."""
    _, found = await _code(db, owner)
    assert found.key is not None and found.grant is not None
    first = await exchange.issue_from_code(db, found.key, found.grant, owner[0], replace_tokens=False)
    second = await exchange.issue_from_code(
        db, found.key, found.grant, owner[0], replace_tokens=replace_tokens
    )
    assert first is not None and second is None
    assert [row.workflow_state for row in await _tokens(db)] == ["active"]


async def test_a_failed_statement_rolls_the_transaction_back(db: Database, owner: tuple[int, int]) -> None:
    """The claim, then an insert that breaks a unique index: the claim is undone too."""
    _, found = await _code(db, owner)
    assert found.key is not None and found.grant is not None
    assert await exchange.issue_from_code(db, found.key, found.grant, owner[0], replace_tokens=False)
    (taken,) = await _tokens(db)
    _, other = await _code(db, owner)
    assert other.grant is not None
    now = clock.now()
    claim = Write(exchange.CLAIM_CODE, {"code_id": other.grant.id, "now": now}, required=True)
    clash = Write(
        exchange.INSERT_TOKEN,
        {
            "user_id": owner[0],
            "developer_key_id": owner[1],
            "token_digest": taken.token_digest,  # already taken
            "refresh_digest": None,
            "token_hint": "x",
            "scopes": SCOPES,
            "purpose": None,
            "remember_access": False,
            "expires_at": None,
            "permanent_expires_at": None,
            "workflow_state": "active",
            "created_at": now,
            "updated_at": now,
            "authorization_code_id": other.grant.id,
        },
    )
    with pytest.raises(Exception, match=r"(?i)unique"):
        await db.writes.run(claim, clash)
    async with db.session() as session:
        redeemed = await session.scalar(
            select(AuthorizationCode.redeemed_at).where(AuthorizationCode.id == other.grant.id)
        )
        count = await session.scalar(select(func.count()).select_from(AccessToken))
    assert redeemed is None and count == 1
    # the writer is still usable after the failure
    assert await exchange.claim_code(db, other.grant)


async def test_the_engine_path_writes_the_same(db: Database, owner: tuple[int, int]) -> None:
    """The fallback (in-memory SQLite, other dialects) runs the same statements on the engine."""
    assert db.writes.mode in ("sqlite", "asyncpg")
    await db.writes.close()
    db.writes = FastWriter(db.url, db.engine, timeout=5.0)
    db.writes.mode = "engine"
    _, found = await _code(db, owner)
    assert found.key is not None and found.grant is not None
    first = await exchange.issue_from_code(db, found.key, found.grant, owner[0], replace_tokens=False)
    assert first is not None and first.access_token is not None
    assert await exchange.issue_from_code(db, found.key, found.grant, owner[0], replace_tokens=False) is None
    (row,) = await _tokens(db)
    assert row.token_digest == secrets.digest(first.access_token) and row.scopes == SCOPES
    assert row.expires_at is not None and row.expires_at.tzinfo is UTC


async def test_a_fast_write_takes_its_turn_behind_the_orms_writers(
    db: Database, owner: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: while an ORM write transaction holds the process's turn (the DAP worker
    stamping the change log, say), a code exchange waits in that queue and touches SQLite only
    after it, instead of sleeping in SQLite's busy handler (whose sleeps grow to 25 ms)."""
    if db.writes.mode != "sqlite":
        pytest.skip("the process's SQLite writer queue: the run without LMSAUTH_TEST_DATABASE_URL")
    _, found = await _code(db, owner)
    assert found.key is not None and found.grant is not None
    started: list[str] = []
    run = db.writes._sqlite_transaction

    def recorded(connection: Any, steps: Any) -> Any:
        started.append("sqlite")
        return run(connection, steps)

    monkeypatch.setattr(db.writes, "_sqlite_transaction", recorded)
    async with db.session(write=True) as session:
        await session.execute(select(func.count()).select_from(AccessToken))
        task = asyncio.create_task(
            exchange.issue_from_code(db, found.key, found.grant, owner[0], replace_tokens=False)
        )
        for _ in range(5):
            await asyncio.sleep(0.02)
        assert not task.done() and started == []  # queued behind the session, SQLite untouched
    issued = await asyncio.wait_for(task, 10)
    assert issued is not None and started == ["sqlite"]


# ---------------------------------------------------------------- SQLite: where the write runs

_RENAME = WriteQuery(
    update(User)
    .where(User.id == bindparam("user_id"))
    .values(name=bindparam("name"), updated_at=bindparam("now"))
    .returning(User.name)
)


def _size(path: str) -> int:
    return os.stat(path).st_size


def _sqlite_only(db: Database) -> None:
    if db.writes.mode != "sqlite":
        pytest.skip("SQLite's writer: the run without LMSAUTH_TEST_DATABASE_URL")


def _threads_of_transactions(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    threads: list[str] = []
    run = db.writes._sqlite_transaction

    def recorded(connection: Any, steps: Any) -> Any:
        threads.append(threading.current_thread().name)
        return run(connection, steps)

    monkeypatch.setattr(db.writes, "_sqlite_transaction", recorded)
    return threads


async def test_an_uncontended_sqlite_write_runs_in_the_event_loops_thread(
    db: Database, owner: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the write lock free, the transaction runs where the request does: a hand-off to
    the writer thread and back cost ~115 us of CPU per grant (benchmarks/ab/9)."""
    _sqlite_only(db)
    threads = _threads_of_transactions(db, monkeypatch)
    row = await db.writes.run(Write(_RENAME, {"user_id": owner[0], "name": "Here", "now": clock.now()}))
    assert row == ("Here",)
    assert threads == [threading.current_thread().name]


async def test_a_write_lock_held_by_another_process_is_waited_for_off_the_event_loop(
    db: Database, owner: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's write transaction (here a plain ``sqlite3`` connection): the grant is
    neither refused nor run in the loop's thread, where SQLite's busy handler would stop every
    request of the process; it waits in the writer thread and commits once the lock is free."""
    _sqlite_only(db)
    threads = _threads_of_transactions(db, monkeypatch)
    other = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        task = asyncio.create_task(
            db.writes.run(Write(_RENAME, {"user_id": owner[0], "name": "Waited", "now": clock.now()}))
        )
        ticks = 0
        for _ in range(20):  # the loop keeps turning while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not task.done()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await asyncio.wait_for(task, 10) == ("Waited",)
    assert len(threads) == 1 and threads[0].startswith("lmsauth-sqlite-writer")


async def test_the_event_loops_commits_are_checkpointed_so_the_wal_starts_over(
    db: Database, owner: tuple[int, int]
) -> None:
    """The loop's connection never checkpoints on commit (that would stop the loop for the
    fsync): the writer thread does it every ``SQLITE_CHECKPOINT_EVERY`` commits, in the
    writers' turn, so the WAL is copied back whole and starts over instead of growing."""
    _sqlite_only(db)
    wal = f"{db.engine.url.database}-wal"
    every = fastwrite.SQLITE_CHECKPOINT_EVERY

    async def renames(count: int) -> None:
        for number in range(count):
            await asyncio.sleep(0)  # a server's loop turns between requests
            params = {"user_id": owner[0], "name": f"n{number}" * 50, "now": clock.now()}
            assert await db.writes.run(Write(_RENAME, params)) is not None

    await renames(every - 1)  # no checkpoint yet
    one_round = _size(wal)
    await renames(every * 6)
    await asyncio.sleep(0.1)
    assert _size(wal) < 2.5 * one_round, (_size(wal), one_round)


def test_sqlite_datetimes_are_bound_as_the_orm_binds_them() -> None:
    """``_sqlite_utc_text`` stands in for UTCDateTime's two chained processors on SQLite: the
    same text for every value (any zone, no microseconds, the first and last years), and a
    naive value refused as the ORM refuses it."""
    dialect = sqlite.dialect()
    orm = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    ours = fastwrite._bind_processor(AccessToken.__table__.c.created_at.type, dialect)
    assert orm is not None and ours is fastwrite._sqlite_utc_text
    values = [
        clock.now(),
        datetime(2026, 12, 4, 15, 0, 0, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("UTC")),
    ]
    for value in values:
        assert ours(value) == orm(value), value
    with pytest.raises(ValueError, match="naive"):
        orm(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 1, 1))
