"""``core.fastread``: the hot-path reads straight on the driver must answer exactly what the ORM
would (types included), see every commit at once, and fail like the engine does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, exc, select, update

from lmsauth.canvas.bearer import authenticate
from lmsauth.canvas.models import AccessToken, Account, DeveloperKey, User, local_id
from lmsauth.canvas.tokens import issue_manual_token
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.core.fastread import FastReader, ReadQuery
from lmsauth.core.outage import is_outage
from lmsauth.settings import Settings
from tests.conftest import Directory

ROW = ReadQuery(
    select(
        AccessToken.id,
        AccessToken.scopes,
        AccessToken.expires_at,
        AccessToken.last_used_at,
        AccessToken.remember_access,
        User.name,
        User.is_admin,
        DeveloperKey.require_scopes,
        # a bind the statement fixes itself: the LIMIT of a scalar subquery
        select(Account.id).order_by(Account.id).limit(1).scalar_subquery(),
    )
    .join(User, User.id == AccessToken.user_id)
    .join(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
    .where(AccessToken.id == bindparam("token_id"))
)


@pytest.fixture
def owner(directory: Directory) -> tuple[int, str]:
    """A user and a developer key (made before the test's event loop runs)."""
    return directory.user().id, directory.key().client_id


async def _token(db: Database, owner: tuple[int, str]) -> tuple[int, str]:
    user_id, client_id = owner
    async with db.session(write=True) as session:
        key = await session.get(DeveloperKey, local_id(int(client_id)))
        assert key is not None
        issued = await issue_manual_token(
            session,
            key=key,
            user_id=user_id,
            scopes=["url:GET|/api/v1/users/:id"],
            purpose="test",
            permanent_expires_at=None,
        )
        assert issued.access_token is not None
        return issued.row.id, issued.access_token


async def _orm_row(db: Database, token_id: int) -> tuple[Any, ...]:
    async with db.engine.connect() as connection:
        row = (await connection.execute(ROW.statement, {"token_id": token_id})).one()
    return tuple(row)


async def test_values_and_types_are_the_orms(settings: Settings, owner: tuple[int, str]) -> None:
    db = Database(settings.resolved_database_url)
    try:
        token_id, _ = await _token(db, owner)
        fast = await db.reads.one(ROW, token_id=token_id)
        assert fast == await _orm_row(db, token_id)
        assert fast is not None
        scopes, expires_at, last_used_at, remember, _name, is_admin, require_scopes, root = fast[1:]
        assert scopes == ["url:GET|/api/v1/users/:id"]
        assert isinstance(expires_at, datetime) and expires_at.tzinfo is UTC
        assert last_used_at is None
        assert remember is False and is_admin is False and require_scopes is False
        assert isinstance(root, int)
        assert await db.reads.one(ROW, token_id=token_id + 1000) is None
    finally:
        await db.dispose()


async def test_the_engine_path_answers_the_same(settings: Settings, owner: tuple[int, str]) -> None:
    """The fallback (in-memory SQLite, other dialects) gives the very same rows."""
    db = Database(settings.resolved_database_url)
    fallback = FastReader(settings.resolved_database_url, db.engine, timeout=5.0)
    fallback.mode = "engine"
    try:
        token_id, _ = await _token(db, owner)
        assert db.reads.mode in ("sqlite", "asyncpg")
        assert await fallback.one(ROW, token_id=token_id) == await db.reads.one(ROW, token_id=token_id)
    finally:
        await fallback.close()
        await db.dispose()


async def test_a_commit_is_seen_by_the_next_read(settings: Settings, owner: tuple[int, str]) -> None:
    """No snapshot outlives a read: a revocation committed anywhere refuses the next call."""
    db = Database(settings.resolved_database_url)
    try:
        token_id, access = await _token(db, owner)
        assert await authenticate(db, access) is not None
        async with db.session(write=True) as session:
            await session.execute(
                update(AccessToken).where(AccessToken.id == token_id).values(workflow_state="deleted")
            )
        assert await authenticate(db, access) is None
    finally:
        await db.dispose()


async def test_expiry_follows_the_clock(settings: Settings, owner: tuple[int, str]) -> None:
    db = Database(settings.resolved_database_url)
    try:
        _, access = await _token(db, owner)
        assert await authenticate(db, access) is not None
        clock.advance(3600)
        assert await authenticate(db, access) is None  # past the 1-hour expiry
        assert await authenticate(db, access, allow_soft_expired=True) is not None
    finally:
        clock.reset()
        await db.dispose()


async def test_sqlite_reads_cannot_write(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("the SQLite reader's own guard; PostgreSQL reads run only SELECTs we compile")
    db = Database(settings.resolved_database_url)
    try:
        write = ReadQuery(select(Account.id))  # a harmless query opens the connection
        await db.reads.one(write)
        connection = db.reads._sqlite
        assert connection is not None
        with pytest.raises(Exception, match=r"readonly|query_only|read-only"):
            connection.execute("DELETE FROM accounts")
    finally:
        await db.dispose()


async def test_a_missing_database_is_an_outage(tmp_path: Any) -> None:
    """A SQLite file that cannot be opened fails as the engine would: a 503, not a 500."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'absent' / 'lmsauth.db'}"
    db = Database(url, timeout=0.2)
    try:
        with pytest.raises(exc.OperationalError) as raised:
            await db.reads.one(ReadQuery(select(Account.id)))
        assert is_outage(raised.value)
    finally:
        await db.dispose()
