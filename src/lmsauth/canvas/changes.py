"""The change log of every table Canvas exports: which rows changed, and when that became known.

Each exported table has database triggers (one definition per dialect, made here from the
table's declaration in ``canvas.export`` and installed by the migrations) that write a row to
``export_changes_pending`` in the same transaction as the insert, update or delete itself. A
trigger, not an ORM event, because writers that bypass the ORM (raw-driver fast paths,
``lmsauth`` commands, a DBA) change the same tables: the log can miss nothing that commits, and
records nothing that rolls back.

A change is written unstamped, to the pending table. ``stamp_changes`` later moves every
committed pending row into ``export_changes`` with one time from ``core.clock``, under a lock
every instance shares, and each stamp is later than every earlier one. Two reasons for stamping
afterwards rather than in the trigger:

- On PostgreSQL, transactions commit in a different order than they start: a row written at
  10:00:00 may become visible after one written at 10:00:01 was already read. A stamp is given
  only to rows already visible, so anything that commits later gets a later stamp, and a window
  ``[since, until)`` read once every row up to ``until`` was stamped never loses a row.
- The time is the server's ``core.clock``, which the emulator moves; a trigger sees only the
  database's own clock.

Why two tables (migration 0012): the pending table has no index but its key, so the trigger's
write inside every grant of the token endpoint is one append; the stamped log's three indexes
are written once, when a row is stamped. With one table, each change wrote those three indexes
in the grant's transaction and rewrote them when stamped (``benchmarks/ANALYSIS.md``).

The log holds keys only: an incremental reads each changed row as it is now (a row gone is a
delete), so a row that changed twice is sent once, with its latest state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, bindparam, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from lmsauth.core.db import Base, Database, UTCDateTime, hold_lock, lock_for_transaction

STAMP_LOCK = "canvas.export_changes.stamp"
STAMP_BATCH = 5_000
# The idle worker's catch-up: one short batch per transaction, each one hand-off to SQLite's
# writer thread, with the token endpoint's writers taking their turns in between. 1,000 rows
# at a time put the refresh's p99 at half the peak rate at 30-42 ms (random keys in the log's
# key index), 200 at 14-16 ms (benchmarks/ab/8-stamping-in-one-hand-off).
STAMP_CATCH_UP_ROWS = 200
TRIGGER_PREFIX = "lmsauth_capture_"


class ExportChange(Base):
    """One change of one row of an exported table: its DAP table name and primary key."""

    __tablename__ = "export_changes"
    __table_args__ = (
        Index("ix_export_changes_window", "table_name", "stamped_at", "row_key"),
        # Incrementals page through changed keys in key order (``changed_keys``).
        Index("ix_export_changes_keys", "table_name", "row_key", "stamped_at"),
        Index("ix_export_changes_stamped_at", "stamped_at"),
    )

    # SQLite autoincrements only an INTEGER primary key (its rowid); PostgreSQL gets int8.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[int] = mapped_column(BigInteger)
    stamped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PendingChange(Base):
    """A change not stamped yet: what the triggers write, moved to ``ExportChange`` when stamped."""

    __tablename__ = "export_changes_pending"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[int] = mapped_column(BigInteger)


class ExportChangeState(Base):
    """One row: the latest stamp given, and since when the log is complete (``kept_since``).

    ``kept_since`` is the first stamp ever given (rows written before the triggers existed have
    no change rows), moved forward when old changes are pruned; an incremental that starts
    earlier cannot be answered from the log.
    """

    __tablename__ = "export_change_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_stamp: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    kept_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


@dataclass(frozen=True)
class CapturedTable:
    """What a trigger needs: the exported name, the database table, its key and watched columns."""

    name: str
    db_table: str
    key: str
    watched: tuple[str, ...]


def _sqlite_ddl(table: CapturedTable, log: str) -> list[str]:
    prefix = f"{TRIGGER_PREFIX}{table.db_table}"
    # Names come from the declarations in canvas.export, never from a request.
    record = f"INSERT INTO {log} (table_name, row_key) VALUES ('{table.name}', {{row}}.{table.key});"  # noqa: S608
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in (table.key, *table.watched))
    return [
        f"CREATE TRIGGER {prefix}_insert AFTER INSERT ON {table.db_table} "
        f"BEGIN {record.format(row='NEW')} END",
        f"CREATE TRIGGER {prefix}_update AFTER UPDATE ON {table.db_table} WHEN {changed} "
        f"BEGIN {record.format(row='NEW')} "
        f"INSERT INTO {log} (table_name, row_key) SELECT '{table.name}', OLD.{table.key} "
        f"WHERE OLD.{table.key} IS NOT NEW.{table.key}; END",
        f"CREATE TRIGGER {prefix}_delete AFTER DELETE ON {table.db_table} "
        f"BEGIN {record.format(row='OLD')} END",
    ]


def _postgresql_ddl(table: CapturedTable, log: str) -> list[str]:
    name = f"{TRIGGER_PREFIX}{table.db_table}"
    # As text: json has no equality operator, and every type here prints one way per value.
    old = ", ".join(f"OLD.{column}::text" for column in (table.key, *table.watched))
    new = ", ".join(f"NEW.{column}::text" for column in (table.key, *table.watched))
    insert = f"INSERT INTO {log} (table_name, row_key) VALUES"
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  IF TG_OP = 'DELETE' THEN\n"
        f"    {insert} ('{table.name}', OLD.{table.key});\n"
        "    RETURN OLD;\n"
        "  END IF;\n"
        f"  IF TG_OP = 'UPDATE' AND ROW({old}) IS NOT DISTINCT FROM ROW({new}) THEN\n"
        "    RETURN NEW;\n"
        "  END IF;\n"
        f"  {insert} ('{table.name}', NEW.{table.key});\n"
        f"  IF TG_OP = 'UPDATE' AND OLD.{table.key} IS DISTINCT FROM NEW.{table.key} THEN\n"
        f"    {insert} ('{table.name}', OLD.{table.key});\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END\n"
        "$$",
        f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table.db_table} "
        f"FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]


PENDING_LOG = "export_changes_pending"


def capture_ddl(dialect: str, table: CapturedTable, log: str = PENDING_LOG) -> list[str]:
    """The statements that make ``table``'s change triggers on ``dialect`` (sqlite, postgresql),
    writing to the table ``log`` (a migration names the one its revision wrote to).

    An update is logged only when a watched (exported) column or the key changed, so that a
    change DAP does not show (a password hash, a token digest) is not sent as one.
    """
    if dialect == "postgresql":
        return _postgresql_ddl(table, log)
    if dialect == "sqlite":
        return _sqlite_ddl(table, log)
    raise ValueError(f"change capture has no triggers for {dialect}")


def drop_capture_ddl(dialect: str, table: CapturedTable) -> list[str]:
    name = f"{TRIGGER_PREFIX}{table.db_table}"
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {table.db_table}", f"DROP FUNCTION IF EXISTS {name}()"]
    return [f"DROP TRIGGER IF EXISTS {name}_{event}" for event in ("insert", "update", "delete")]


async def stamp_changes(session: AsyncSession, now: datetime) -> datetime:
    """Stamp every visible unstamped change; return the boundary just after the stamp.

    Every change stamped so far is earlier than the boundary, and every later stamp is at or
    after it: the boundary is a snapshot's ``at`` or an incremental's ``until``, and the
    next window starting there (``since`` inclusive) holds exactly the changes that came after.
    Call it in a transaction of its own, committed before anything relies on the stamp.
    """
    boundary, _ = await session.run_sync(_stamp, now, max_batches=None)
    return boundary


async def stamp_some_changes(db: Database, now: datetime) -> bool:
    """Stamp at most ``STAMP_CATCH_UP_ROWS`` of the visible unstamped changes, in a transaction
    of its own; True when none is left. For catching up in short transactions: on SQLite a
    transaction holds the one write lock, and stamping a bulk load of 1,000,000 rows in one
    made every other writer wait past its 10 s (503s in the benchmark's RSS run). Rows left
    over get a later stamp in the next transaction, which keeps every stamp later than the ones
    before it; only a boundary needs ``stamp_changes``, with nothing left behind. On SQLite the
    transaction is one hand-off to the writer's thread (``FastWriter.run_orm``)."""

    def work(session: Session) -> bool:
        return _stamp(session, now, max_batches=1, batch_rows=STAMP_CATCH_UP_ROWS)[1]

    return await db.writes.run_orm(work)


def _stamp(
    session: Session, now: datetime, *, max_batches: int | None, batch_rows: int | None = None
) -> tuple[datetime, bool]:
    rows = batch_rows or STAMP_BATCH
    hold_lock(session, STAMP_LOCK)
    state = session.get(ExportChangeState, 1, with_for_update=True)
    if state is None:
        state = ExportChangeState(id=1)
        session.add(state)
    stamp = now
    if state.last_stamp is not None and stamp <= state.last_stamp:
        stamp = state.last_stamp + timedelta(microseconds=1)
    # In batches, each well inside the backend timeout, all in this transaction (under the
    # lock): a bulk load leaves millions of rows to stamp at once.
    move = _move_pending_postgresql if session.get_bind().dialect.name == "postgresql" else _move_pending
    batches, done = 0, False
    while max_batches is None or batches < max_batches:
        moved = move(session, stamp, rows)
        batches += 1
        if moved < rows:
            done = True
            break
    state.last_stamp = stamp
    if state.kept_since is None:
        state.kept_since = stamp
    session.flush()
    return stamp + timedelta(microseconds=1), done


_STAMPED_AT = ExportChange.__table__.c.stamped_at


def _moved_rows(rows: Any, stamp: datetime) -> Any:
    return select(rows.c.table_name, rows.c.row_key, bindparam("stamp", stamp, type_=_STAMPED_AT.type))


def _move_pending(session: Session, stamp: datetime, rows: int) -> int:
    """SQLite: the oldest ``rows`` pending changes into the log, stamped, in two statements
    (SQLite has no DELETE ... RETURNING inside an INSERT). The writing session holds the
    database's one write lock, so nothing commits between them."""
    first = select(PendingChange.id).order_by(PendingChange.id).limit(rows).subquery()
    last = session.scalar(select(func.max(first.c.id)))
    if last is None:
        return 0
    batch = select(PendingChange).where(PendingChange.id <= last).order_by(PendingChange.id).subquery()
    result = session.execute(
        insert(ExportChange).from_select(["table_name", "row_key", "stamped_at"], _moved_rows(batch, stamp))
    )
    session.execute(delete(PendingChange).where(PendingChange.id <= last))
    return int(getattr(result, "rowcount", 0) or 0)


def _move_pending_postgresql(session: Session, stamp: datetime, rows: int) -> int:
    """PostgreSQL: the delete and the insert in one statement, so one snapshot decides which
    pending rows move: a row whose transaction commits meanwhile is neither moved nor deleted
    (two statements under READ COMMITTED could delete it without having moved it)."""
    batch = select(PendingChange.id).order_by(PendingChange.id).limit(rows).scalar_subquery()
    taken = (
        delete(PendingChange)
        .where(PendingChange.id.in_(batch))
        .returning(PendingChange.table_name, PendingChange.row_key)
        .cte("taken")
    )
    result = session.execute(
        insert(ExportChange).from_select(["table_name", "row_key", "stamped_at"], _moved_rows(taken, stamp))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def change_window(session: AsyncSession) -> tuple[datetime | None, datetime | None]:
    """``(kept_since, last_stamp)``: the log answers incrementals from ``kept_since`` on."""
    state = await session.get(ExportChangeState, 1)
    return (None, None) if state is None else (state.kept_since, state.last_stamp)


async def prune_changes(session: AsyncSession, before: datetime) -> int:
    """Forget changes stamped before ``before``; incrementals must then start at or after it."""
    await lock_for_transaction(session, STAMP_LOCK)
    state = await session.get(ExportChangeState, 1, with_for_update=True)
    if state is None or state.kept_since is None or state.kept_since >= before:
        return 0
    result = await session.execute(delete(ExportChange).where(ExportChange.stamped_at < before))
    state.kept_since = before
    await session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


async def changed_keys(
    session: AsyncSession,
    table_name: str,
    since: datetime,
    until: datetime,
    *,
    after: int | None,
    limit: int,
) -> Sequence[Any]:
    """Up to ``limit`` ``(row_key, last stamp)`` of rows changed in ``[since, until)``, in key
    order after ``after`` (keyset paging, so memory stays bounded however many changed)."""
    statement = (
        select(ExportChange.row_key, func.max(ExportChange.stamped_at))
        .where(
            ExportChange.table_name == table_name,
            ExportChange.stamped_at >= since,
            ExportChange.stamped_at < until,
        )
        .group_by(ExportChange.row_key)
        .order_by(ExportChange.row_key)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(ExportChange.row_key > after)
    return (await session.execute(statement)).all()


async def installed_triggers(session: AsyncSession) -> set[str]:
    """The names of the capture triggers in the database (a test checks every table has its own)."""
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgname LIKE :prefix"), {"prefix": TRIGGER_PREFIX + "%"}
        )
    else:
        rows = await session.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :prefix"),
            {"prefix": TRIGGER_PREFIX + "%"},
        )
    return {row[0] for row in rows}
