"""Short write transactions on the hot paths, executed straight on the database driver.

The token endpoint's code exchange and refresh are a read and one or two writes. Through the
ORM on an ``AsyncSession`` each statement cost ~1.5 ms of CPU on the benchmark core and a
SQLite transaction ~four thread hand-offs per statement, where the same statements on
``sqlite3`` cost ~45 us in all (``benchmarks/ANALYSIS.md``). So, as ``core.fastread`` does for
reads, the statements are written with SQLAlchemy Core on the project's models (compiled once
per dialect, each bind value converted by SQLAlchemy's own bind processor for its column type,
so a value is stored exactly as the ORM stores it) and only the execution is hand-written, with
one exception: ``core.db.UTCDateTime`` on SQLite, whose two chained processors cost ~4.5 us a
value (a code exchange binds five), is written as the same text by ``_sqlite_utc_text`` in
~2 us, and a test compares the two over many values:

- SQLite: a whole transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) is taken in this
  process's turn with the ORM's writers (``core.db``'s queue, first come first served), so the
  two never meet in SQLite's busy handler, whose growing sleeps (1, 2, 5 ... 25 ms) put
  39-147 ms on the refresh's p99 while the DAP worker stamped the change log. In its turn the
  transaction runs right in the event loop's thread, as ``core.fastread``'s reads do: with
  the turn held and WAL's commits unsynced it is tens of microseconds of CPU, where the
  hand-off to a thread and back cost ~105 us per grant (``benchmarks/ab/9-sqlite-writes-inline``).
  Only when the write lock is held elsewhere (another process on the same file, found at once:
  that connection never waits) does the transaction go to the one writer thread, to wait in
  SQLite's busy handler there (``busy_timeout``, as long as ``core.db``'s) without blocking
  the loop. The loop's connection never checkpoints on commit, which would block the loop for
  the checkpoint's copying and fsyncs (4-24 ms here): every ``SQLITE_CHECKPOINT_EVERY`` of its
  commits a passive checkpoint runs in the writer thread, in the writers' turn, so that it
  completes and the WAL starts over.
- PostgreSQL: a small asyncpg pool (prepared statements, cached per connection). A single
  write is one autocommit statement, one round trip; several are one transaction. A
  connection given back inside a transaction (a cancelled request) is rolled back on release.
- Anything else (an in-memory SQLite database, other dialects): the same statements on the
  engine, in one transaction, so behaviour is identical everywhere and only the speed differs.

``run_orm`` gives background writers of several statements (the DAP worker's stamping) the
same single hand-off on SQLite: their work, written once with a synchronous ORM ``Session``,
runs whole in the writer's thread on its connection. Through an ``AsyncSession`` each statement
is a hand-off, and SQLite's write lock stays held across the event loop's turns between them;
here a transaction holds it for its own work only (``benchmarks/ab/8-stamping-in-one-hand-off``:
what brought the refresh's tail under 20 ms there was the stamping's smaller batches).

Every statement is a plain INSERT or UPDATE on the real tables (triggers fire as for the ORM),
and ``run`` returns only after the transaction has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.types import TypeEngine

from lmsauth.core.fastread import driver_mode, is_utc_datetime, open_asyncpg_pool, pooled

Row = tuple[Any, ...]
T = TypeVar("T")
A = TypeVar("A")
SQLITE_BUSY_TIMEOUT_MS = 10_000  # as core.db's connections (SQLITE_WRITE_WAIT_SECONDS)
# Commits on the loop's connection between two checkpoints: a refresh writes ~5 WAL pages and a
# code exchange ~10, so about SQLite's own default of a checkpoint every 1,000 pages.
SQLITE_CHECKPOINT_EVERY = 100
log = logging.getLogger(__name__)


class WriteQuery:
    """An INSERT or UPDATE (with ``RETURNING`` when its row is wanted) written with Core and
    named bind parameters, compiled once per dialect. Every column a Python-side default or
    ``onupdate`` would fill must be given a bind: the driver never runs those defaults."""

    def __init__(self, statement: Insert | Update) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, list[tuple[str, Any, Any]]]] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any, Any]]]:
        """(SQL in the driver's parameter style, per bind in order: its name, the value the
        statement fixed itself (``values(state="deleted")``) or None, its bind processor)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            binds = []
            for name in compiled.positiontup or []:
                processor = _bind_processor(compiled.binds[name].type, dialect)
                binds.append((name, compiled.params.get(name), processor))
            found = self._compiled[dialect.name] = (str(compiled), binds)
        return found

    def values(self, dialect: Dialect, params: dict[str, Any]) -> tuple[str, list[Any]]:
        sql, binds = self.compiled(dialect)
        values = []
        for name, fixed, processor in binds:
            if name in params:
                value = params[name]
            elif fixed is not None:
                value = fixed
            else:
                raise KeyError(f"no value for the bind {name!r} (a column default the driver cannot run?)")
            values.append(value if processor is None or value is None else processor(value))
        return sql, values


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's bind processor for ``type_``, but ``_sqlite_utc_text`` for a UTCDateTime
    on SQLite."""
    if dialect.name == "sqlite" and is_utc_datetime(type_):
        return _sqlite_utc_text
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _sqlite_utc_text(value: datetime) -> str:
    """What ``UTCDateTime.process_bind_param`` and SQLite's ``DATETIME`` processor make of
    ``value`` together: naive UTC as ``YYYY-MM-DD HH:MM:SS.ffffff``; a naive value is refused."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


@dataclass(frozen=True, slots=True)
class Write:
    """One statement of a transaction. ``required``: when it returns no row (a compare-and-set
    that lost), the transaction is rolled back and ``FastWriter.run`` returns None."""

    query: WriteQuery
    params: dict[str, Any] = field(default_factory=dict)
    required: bool = False


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class _Lost(Exception):
    """A required write returned no row: roll back."""


class _LockedElsewhere(Exception):
    """SQLite's write lock is held by another connection: wait for it in the writer thread."""


async def _rollback_leftover(connection: asyncpg.Connection) -> None:
    """On release: nothing to reset unless a cancelled request left a transaction open."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class FastWriter:
    """Runs ``Write``s for one database in one transaction (see the module docstring)."""

    def __init__(
        self,
        url: str,
        engine: AsyncEngine,
        *,
        timeout: float,
        turn: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self._url = make_url(url)
        self._engine = engine
        self._timeout = timeout
        self._turn = turn  # SQLite: the process's turn among its writers
        self.mode, self._dialect = driver_mode(self._url, engine)
        self._thread: ThreadPoolExecutor | None = None
        self._sqlite: sqlite3.Connection | None = None  # the writer thread's
        self._sqlite_here: sqlite3.Connection | None = None  # the event loop's
        self._here = threading.Lock()  # one transaction at a time on the loop's connection
        self._commits_here = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self._sqlite_orm: Engine | None = None
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @property
    def one_round_trip_statements(self) -> bool:
        """Whether one statement may carry several writes (PostgreSQL's data-modifying
        ``WITH``), so that a caller can offer one in place of a transaction of several."""
        return self.mode == "asyncpg"

    async def run(self, *writes: Write) -> Row | None:
        """The writes in order, in one transaction that has committed when this returns: the
        first row the last write returned (None if it returns none), or None and nothing
        written when a ``required`` write returned no row."""
        steps = [(*write.query.values(self._dialect, write.params), write.required) for write in writes]
        if self.mode == "sqlite":
            async with self._turn():
                try:
                    return self._sqlite_run_here(steps)
                except _LockedElsewhere:
                    return await self._in_writer_thread(self._sqlite_run, steps)
        if self.mode == "asyncpg":
            return await self._asyncpg_run(steps)
        return await self._engine_run(writes)

    async def run_orm(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one write transaction, committed when this returns (rolled back
        if ``work`` raises). SQLite: in the writer's thread, on its connection, one hand-off in
        the process's turn. Elsewhere: an ``AsyncSession``'s ``run_sync``."""
        if self.mode == "sqlite":
            async with self._turn():
                return await self._in_writer_thread(self._sqlite_orm_run, work)
        engine = self._engine.execution_options(lmsauth_write=True)
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            return await session.run_sync(work)

    # ---------------------------------------------------------------- SQLite: loop and writer thread

    async def _in_writer_thread(self, call: Callable[[A], T], argument: A) -> T:
        """``call(argument)`` in the one writer thread (the caller holds the writers' turn)."""
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmsauth-sqlite-writer")
        return await loop.run_in_executor(self._thread, call, argument)

    def _sqlite_run_here(self, steps: Sequence[tuple[str, list[Any], bool]]) -> Row | None:
        """The transaction on the event loop's connection, or ``_LockedElsewhere`` before
        anything is written. The lock also sends a second thread's event loop (a test client's)
        to the writer thread rather than into this connection's open transaction."""
        if not self._here.acquire(blocking=False):
            raise _LockedElsewhere
        try:
            if self._sqlite_here is None:
                self._sqlite_here = self._open_sqlite(here=True)
            try:
                self._sqlite_here.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                    raise _LockedElsewhere from error
                raise _sqlite_error(steps, error) from error
            row = self._sqlite_transaction(self._sqlite_here, steps)
        finally:
            self._here.release()
        self._commits_here += 1
        if self._commits_here >= SQLITE_CHECKPOINT_EVERY and not self._checkpoint_pending():
            self._commits_here = 0
            self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_in_turn())
        return row

    def _checkpoint_pending(self) -> bool:
        """Whether a checkpoint is due to run (not one left behind by a closed event loop, such
        as a finished test client's)."""
        task = self._checkpoint
        return task is not None and not task.done() and not task.get_loop().is_closed()

    async def _checkpoint_in_turn(self) -> None:
        """A passive checkpoint in the writer thread, no writer of this process running, so it
        copies the whole WAL back and the next write starts the WAL over; it never waits for
        another process (``PASSIVE``), and a failure is logged, the next one due
        ``SQLITE_CHECKPOINT_EVERY`` commits on."""
        try:
            async with self._turn():
                await self._in_writer_thread(_checkpoint, self._connection)
        except Exception:
            log.exception("SQLite WAL checkpoint failed")
        finally:
            self._checkpoint = None

    def _connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            self._sqlite = self._open_sqlite()
        return self._sqlite

    def _sqlite_orm_run(self, work: Callable[[Session], T]) -> T:
        if self._sqlite_orm is None:
            connection = self._connection()
            # An engine over this thread's one connection (StaticPool hands the same one out);
            # the connection is in autocommit mode, so the engine begins as core.db's writers do.
            self._sqlite_orm = create_engine("sqlite://", creator=lambda: connection, poolclass=StaticPool)
            event.listen(self._sqlite_orm, "begin", _begin_immediate)
        with Session(self._sqlite_orm, expire_on_commit=False) as session, session.begin():
            return work(session)

    def _sqlite_run(self, steps: Sequence[tuple[str, list[Any], bool]]) -> Row | None:
        """The transaction in the writer thread, waiting for the write lock up to ``busy_timeout``."""
        try:
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:  # locked past busy_timeout, file gone
            raise _sqlite_error(steps, error) from error
        return self._sqlite_transaction(connection, steps)

    @staticmethod
    def _sqlite_transaction(
        connection: sqlite3.Connection, steps: Sequence[tuple[str, list[Any], bool]]
    ) -> Row | None:
        """The steps and the commit of a transaction ``BEGIN IMMEDIATE`` has opened."""
        try:
            row: Row | None = None
            for sql, values, required in steps:
                rows = connection.execute(sql, values).fetchall()
                row = tuple(rows[0]) if rows else None
                if row is None and required:
                    connection.execute("ROLLBACK")
                    return None
            connection.execute("COMMIT")
            return row
        except BaseException as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError):  # the file gone, the disk full
                raise _sqlite_error(steps, error) from error
            raise

    def _open_sqlite(self, *, here: bool = False) -> sqlite3.Connection:
        """The writer thread's connection, or (``here``) the event loop's: that one never
        waits for the lock (``busy_timeout`` 0) and never checkpoints on commit."""
        connection = sqlite3.connect(
            self._url.database or "", isolation_level=None, cached_statements=64, check_same_thread=not here
        )
        connection.execute(f"PRAGMA busy_timeout={0 if here else SQLITE_BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA synchronous=NORMAL")
        if here:
            connection.execute("PRAGMA wal_autocheckpoint=0")
        return connection

    # ---------------------------------------------------------------- PostgreSQL

    async def _asyncpg_run(self, steps: Sequence[tuple[str, list[Any], bool]]) -> Row | None:
        pool = self._pool or await self._open_pool()
        async with pooled(pool, self._timeout) as connection:
            if len(steps) == 1:  # one autocommit statement: one round trip
                sql, values, _ = steps[0]
                found = await connection.fetchrow(sql, *values)
                return None if found is None else tuple(found)
            try:
                async with connection.transaction():
                    row: Row | None = None
                    for sql, values, required in steps:
                        found = await connection.fetchrow(sql, *values)
                        row = None if found is None else tuple(found)
                        if row is None and required:
                            raise _Lost
                    return row
            except _Lost:
                return None

    async def _open_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await open_asyncpg_pool(self._url, self._timeout, _rollback_leftover)
            return self._pool

    # ---------------------------------------------------------------- any other engine

    async def _engine_run(self, writes: Sequence[Write]) -> Row | None:
        try:
            async with self._engine.execution_options(lmsauth_write=True).begin() as connection:
                row: Row | None = None
                for write in writes:
                    result = await connection.execute(write.query.statement, write.params)
                    found = result.first() if result.returns_rows else None
                    row = None if found is None else tuple(found)
                    if row is None and write.required:
                        raise _Lost
                return row
        except _Lost:
            return None

    async def close(self) -> None:
        if self._checkpoint is not None and self._checkpoint.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint
        if self._sqlite_here is not None:
            connection_here, self._sqlite_here = self._sqlite_here, None
            connection_here.close()
        if self._thread is not None:
            thread, self._thread = self._thread, None
            connection, self._sqlite = self._sqlite, None
            self._sqlite_orm = None  # its pool holds only ``connection``, closed here
            if connection is not None:
                await asyncio.get_running_loop().run_in_executor(thread, connection.close)
            thread.shutdown(wait=True)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _checkpoint(connection: Callable[[], sqlite3.Connection]) -> None:
    connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _sqlite_error(
    steps: Sequence[tuple[str, list[Any], bool]], error: sqlite3.OperationalError
) -> exc.OperationalError:
    """SQLite's error as SQLAlchemy's, which the app answers as an outage (503)."""
    return exc.OperationalError(steps[0][0], steps[0][1], error)
