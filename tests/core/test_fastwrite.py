"""``core.fastwrite`` through ``canvas.exchange``: rows written on the driver must read back
through the ORM exactly as rows the ORM wrote (types included), a lost compare-and-set must
write nothing, and a failed statement must roll its whole transaction back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from lmsauth.canvas import exchange
from lmsauth.canvas.models import AccessToken, AuthorizationCode, DeveloperKey, local_id
from lmsauth.canvas.tokens import ACCESS_TOKEN_LIFETIME, issue_code
from lmsauth.core import clock, secrets
from lmsauth.core.db import Database
from lmsauth.core.fastwrite import FastWriter, Write
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
    run = db.writes._sqlite_run

    def recorded(steps: Any) -> Any:
        started.append("sqlite")
        return run(steps)

    monkeypatch.setattr(db.writes, "_sqlite_run", recorded)
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
