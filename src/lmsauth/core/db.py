"""The database: engine, async sessions and the declarative base every service's models use.

SQLite (a file in the data folder, WAL mode) is the embedded default; PostgreSQL is chosen by
URL. One code path serves both: portable column types, and no dialect-specific SQL outside
this module.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from lmsauth.core.fastread import FastReader
from lmsauth.core.fastwrite import FastWriter

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


SQLITE_WRITE_WAIT_SECONDS = 10.0  # as long as the busy handler waits (busy_timeout, below)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We emit BEGIN ourselves (below), so the driver must not start transactions on its own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    """Writers take SQLite's write lock up front (BEGIN IMMEDIATE) so that a read-then-write
    transaction waits for its turn instead of failing with "database is locked"."""
    immediate = conn.get_execution_options().get("lmsauth_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, timeout: float = 5.0) -> AsyncEngine:
    """An engine for ``url``. On PostgreSQL, connecting, waiting for a pooled connection and
    each statement are bounded by ``timeout`` seconds, so a database that is down or hung
    fails a request quickly (``core.outage`` answers 503) instead of holding it; a pooled
    connection is tested before use, so the pool heals by itself after a restart."""
    if url.startswith("sqlite"):
        if ":memory:" in url:
            engine = create_async_engine(url, poolclass=NullPool)
        else:
            # LIFO: the connection just used is used again, so one connection's page cache
            # stays warm and the others' stay small (FIFO fills every pooled connection's
            # cache in turn: ~2 MB each, up to 15 connections, measured as RSS growth).
            engine = create_async_engine(url, pool_use_lifo=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=timeout,
        connect_args={"timeout": timeout, "command_timeout": timeout},
    )


async def lock_for_transaction(session: AsyncSession, name: str) -> None:
    """Hold the lock ``name`` until the session's transaction ends, across every instance.

    PostgreSQL: a transaction-level advisory lock. SQLite: a writing session already holds the
    database's one write lock (``Database.session(write=True)``), which is all there is.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_ADVISORY_LOCK, {"number": _lock_number(name)})


def hold_lock(session: Session, name: str) -> None:
    """``lock_for_transaction`` for a synchronous session (``FastWriter.run_orm``'s work)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_ADVISORY_LOCK, {"number": _lock_number(name)})


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:number)")


def _lock_number(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


MAX_ROW_ID = 2**31 - 1  # Integer primary keys are int4 on PostgreSQL


def row_id(value: int | None) -> int | None:
    """``value`` when it can be an Integer primary key on every backend, else None.

    Ids from requests are checked with this before they reach a query: PostgreSQL refuses to
    compare an int4 column with a larger number (an error, not "no row"), where SQLite simply
    finds nothing.
    """
    return value if value is not None and 0 < value <= MAX_ROW_ID else None


async def sync_id_sequence(session: AsyncSession, table: str) -> None:
    """After rows were inserted with explicit ids, move PostgreSQL's id sequence past them.

    SQLite needs nothing: its rowids continue from the largest id.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    await session.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608  (table is ours)
            f"GREATEST((SELECT MAX(id) FROM {table}), 1))"
        )
    )


class _WritersTurn:
    """``Database._sqlite_turn`` for one event loop: an ``asyncio.Lock`` whose wait is bounded
    by ``SQLITE_WRITE_WAIT_SECONDS``. The bound's timer (``asyncio.timeout``, ~8 us of CPU to
    arm and cancel here, where a whole grant's write is ~100 us) is armed only when the writer
    may wait: when the lock is held or another writer is queued for it (one woken by a release
    holds no lock yet, and ``Lock.acquire`` would queue a newcomer behind it)."""

    __slots__ = ("_lock", "_queued", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = asyncio.Lock()
        self._queued = 0

    async def __aenter__(self) -> None:
        if not self._queued and not self._lock.locked():
            await self._lock.acquire()  # free, no one queued: taken without suspending
            return
        self._queued += 1
        try:
            async with asyncio.timeout(SQLITE_WRITE_WAIT_SECONDS):
                await self._lock.acquire()
        finally:
            self._queued -= 1

    async def __aexit__(self, *_: object) -> None:
        self._lock.release()


class Database:
    """An engine and its session factory; one per process."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.engine = make_engine(url, timeout=timeout)
        self.is_sqlite = url.startswith("sqlite")
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer_sessions = async_sessionmaker(
            self.engine.execution_options(lmsauth_write=True), expire_on_commit=False
        )
        self.reads = FastReader(url, self.engine, timeout=timeout)
        self._writers: _WritersTurn | None = None
        self.writes = FastWriter(url, self.engine, timeout=timeout, turn=self._sqlite_turn)

    @asynccontextmanager
    async def session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends without error, else rolls back.

        Pass ``write=True`` when the block may write: on SQLite it then holds the write lock
        from the start. Whatever the block returns to a client is committed before it leaves.
        """
        if write and self.is_sqlite:
            async with self._sqlite_turn(), self._writer_sessions() as session, session.begin():
                yield session
            return
        factory = self._writer_sessions if write else self.sessions
        async with factory() as session, session.begin():
            yield session

    def _sqlite_turn(self) -> _WritersTurn:
        """This process's writers take SQLite's one write lock in turn, first come first
        served, waiting on an ``asyncio.Lock`` rather than each in its own driver thread inside
        SQLite's busy handler, which polls with sleeps of up to 100 ms, favours no one, and
        held a pooled connection (and its page cache) per waiting request (p99 of 2.8-4.4 s on
        the code and refresh benchmarks). Other processes on the same file still meet in
        SQLite's busy handler. The wait is bounded like the busy handler's (10 s): past it the
        request fails as an outage (503)."""
        loop = asyncio.get_running_loop()
        if self._writers is None or self._writers.loop is not loop:  # a lock belongs to one loop
            self._writers = _WritersTurn(loop)
        return self._writers

    async def ping(self) -> None:
        """Return when the database answers a query (``/readyz``)."""
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.reads.close()
        await self.writes.close()
        await self.engine.dispose()
