"""One-row reads on the hot paths, executed straight on the database driver.

Every API call, Commons session read and identity login starts by finding one row by the
digest of what the client presented. Through the ORM on an ``AsyncSession`` that one read cost
~1.5 ms of CPU on the benchmark core (building and caching the statement, the greenlet
adaptation, aiosqlite's four thread hand-offs, loading entities), against ~10 us for the same
indexed SELECT on ``sqlite3`` and ~0.1 ms on an asyncpg connection (``benchmarks/ANALYSIS.md``).

So these reads keep SQLAlchemy for what it does well, writing the statement (Core ``select``,
the project's own models and types, compiled once per dialect), and hand-write only the
execution: the compiled SQL goes to the driver, and each column is decoded by a small function
chosen from its SQLAlchemy type. A library could do the execution (it is what the ORM does);
it is written here because that is exactly the cost being removed.

- SQLite: one ``sqlite3`` connection per process, ``query_only``, used inline on the event
  loop. An indexed one-row read in WAL mode never waits for writers and costs less than the
  thread hand-off it replaces; ``busy_timeout`` bounds the rare wait (a checkpoint).
- PostgreSQL: a small asyncpg pool with no reset round trip on release (these connections
  run only single autocommit SELECTs, so there is nothing to reset), every wait bounded by the
  backend timeout; a broken connection is dropped and the next acquire reconnects.
- Anything else (an in-memory SQLite database, other dialects): the statement runs through the
  engine, so behaviour is identical everywhere and only the speed differs.

Each read is its own autocommit statement: it sees everything committed before it, on every
instance, so revocation is still seen at once. Writes never come here.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import JSON, Boolean, DateTime, exc
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeDecorator, TypeEngine

Row = tuple[Any, ...]
Decoder = Callable[[Any], Any]


def _sqlite_datetime(value: Any) -> datetime | None:
    # SQLAlchemy stores SQLite datetimes as "YYYY-MM-DD HH:MM:SS[.ffffff]" text, in UTC.
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _naive_utc(value: Any) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _boolean(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def is_utc_datetime(type_: TypeEngine[Any]) -> bool:
    """Whether ``type_`` is ``core.db.UTCDateTime`` (the one ``TypeDecorator`` over ``DateTime``;
    ``core.db`` imports this module, so it is recognised rather than imported)."""
    return isinstance(type_, TypeDecorator) and isinstance(type_.impl_instance, DateTime)


def _decoder(type_: TypeEngine[Any], dialect: str) -> Decoder | None:
    """What turns the driver's value into what the ORM would have given (None: as it is)."""
    if is_utc_datetime(type_):  # stored as naive UTC, read back timezone-aware
        return _sqlite_datetime if dialect == "sqlite" else _naive_utc
    if isinstance(type_, Boolean):
        return _boolean if dialect == "sqlite" else None
    if isinstance(type_, JSON):
        return _json
    return None


class ReadQuery:
    """A SELECT of at most one interesting row, written with SQLAlchemy Core and named bind
    parameters (``bindparam("digest")``), compiled once per dialect."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, Sequence[str], dict[str, Any], list[tuple[int, Decoder]]]] = {}

    def compiled(
        self, dialect: Dialect
    ) -> tuple[str, Sequence[str], dict[str, Any], list[tuple[int, Decoder]]]:
        """(SQL in the driver's parameter style, bind names in order, the values of the binds the
        statement fixed itself (a ``LIMIT``), a decoder per column)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            names = list(compiled.positiontup or [])
            fixed = {name: value for name, value in compiled.params.items() if value is not None}
            decoders = [
                (index, decode)
                for index, column in enumerate(self.statement.selected_columns)
                if (decode := _decoder(column.type, dialect.name)) is not None
            ]
            found = self._compiled[dialect.name] = (str(compiled), names, fixed, decoders)
        return found


def _decode(row: Sequence[Any], decoders: list[tuple[int, Decoder]]) -> Row:
    if not decoders:
        return tuple(row)
    values = list(row)
    for index, decode in decoders:
        values[index] = decode(values[index])
    return tuple(values)


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Pool connections run single autocommit SELECTs: there is no session state to reset."""


def driver_mode(url: URL, engine: AsyncEngine) -> tuple[str, Dialect]:
    """How statements for ``url`` run: on ``sqlite3`` (a SQLite file), on asyncpg, or on the
    engine (anything else), and the dialect their SQL is compiled for."""
    backend = url.get_backend_name()
    database = url.database or ""
    if backend == "sqlite" and database not in ("", ":memory:") and "mode=memory" not in database:
        return "sqlite", pysqlite.dialect()
    if backend == "postgresql" and url.get_driver_name() == "asyncpg":
        return "asyncpg", pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
    return "engine", engine.dialect


async def open_asyncpg_pool(
    url: URL, wait: float, reset: Callable[[asyncpg.Connection], Awaitable[None]]
) -> asyncpg.Pool:
    """A small pool for ``url``, every wait bounded by ``wait`` seconds."""
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncio.wait_for(
        asyncpg.create_pool(dsn, min_size=0, max_size=10, reset=reset, timeout=wait), wait
    )


@asynccontextmanager
async def pooled(pool: asyncpg.Pool, wait: float) -> AsyncIterator[asyncpg.Connection]:
    """A connection of ``pool`` for one piece of work, every wait bounded by ``wait`` seconds.

    One deadline covers the wait for a connection and the work: ``asyncio.timeout`` is a timer
    handle, where asyncpg's own ``acquire(timeout=...)`` starts a task per call (two thirds of a
    one-row read's CPU when measured). The release gets its own bound: after a statement the
    deadline cancelled, asyncpg waits for the server to confirm the cancellation, without limit
    unless told, so a database that hangs (a partition) would hang the request; past ``wait``
    the connection is terminated instead and the next acquire reconnects."""
    async with asyncio.timeout(wait):
        connection = await pool.acquire()
        try:
            yield connection
        finally:
            await pool.release(connection, timeout=wait)


class FastReader:
    """Runs ``ReadQuery``s for one database (see the module docstring for how per backend)."""

    def __init__(self, url: str, engine: AsyncEngine, *, timeout: float) -> None:
        self._url = make_url(url)
        self._engine = engine
        self._timeout = timeout
        self.mode, self._dialect = driver_mode(self._url, engine)
        self._sqlite: sqlite3.Connection | None = None
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    async def one(self, query: ReadQuery, **params: Any) -> Row | None:
        """The first row of ``query`` with ``params``, decoded; None when there is none."""
        sql, names, fixed, decoders = query.compiled(self._dialect)
        values = [params[name] if name in params else fixed[name] for name in names]
        if self.mode == "sqlite":
            row = self._sqlite_one(sql, values)
        elif self.mode == "asyncpg":
            row = await self._asyncpg_one(sql, values)
        else:
            async with self._engine.connect() as connection:
                row = (await connection.execute(query.statement, params)).first()
            return None if row is None else tuple(row)
        return None if row is None else _decode(row, decoders)

    async def all(self, query: ReadQuery, **params: Any) -> list[Row]:
        """Every row of ``query`` with ``params``, decoded (for the few reads of several rows)."""
        sql, names, fixed, decoders = query.compiled(self._dialect)
        values = [params[name] if name in params else fixed[name] for name in names]
        if self.mode == "sqlite":
            rows: Sequence[Sequence[Any]] = self._sqlite_all(sql, values)
        elif self.mode == "asyncpg":
            pool = self._pool or await self._open_pool()
            async with pooled(pool, self._timeout) as connection:
                rows = await connection.fetch(sql, *values)
        else:
            async with self._engine.connect() as connection:
                return [tuple(row) for row in await connection.execute(query.statement, params)]
        return [_decode(row, decoders) for row in rows]

    def _sqlite_all(self, sql: str, values: list[Any]) -> list[Any]:
        try:
            if self._sqlite is None:
                self._sqlite = self._open_sqlite()
            return self._sqlite.execute(sql, values).fetchall()
        except sqlite3.OperationalError as error:
            raise exc.OperationalError(sql, values, error) from error

    def _sqlite_one(self, sql: str, values: list[Any]) -> Sequence[Any] | None:
        try:
            if self._sqlite is None:
                self._sqlite = self._open_sqlite()
            row: Sequence[Any] | None = self._sqlite.execute(sql, values).fetchone()
            return row
        except sqlite3.OperationalError as error:  # locked past busy_timeout, file gone
            raise exc.OperationalError(sql, values, error) from error

    def _open_sqlite(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._url.database or "", isolation_level=None, check_same_thread=False, cached_statements=64
        )
        connection.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        connection.execute("PRAGMA query_only=ON")
        return connection

    async def _asyncpg_one(self, sql: str, values: list[Any]) -> Sequence[Any] | None:
        pool = self._pool or await self._open_pool()
        async with pooled(pool, self._timeout) as connection:
            row: Sequence[Any] | None = await connection.fetchrow(sql, *values)
            return row

    async def _open_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await open_asyncpg_pool(self._url, self._timeout, _no_reset)
            return self._pool

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
