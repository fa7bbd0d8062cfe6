"""The change log of exported tables (``canvas.changes``): every exported table has its
triggers, each insert, update and delete is logged in its own transaction (and a rollback
leaves nothing), and stamping never loses a change that commits after a later one."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import changes
from lmsauth.canvas.changes import (
    ExportChange,
    PendingChange,
    changed_keys,
    installed_triggers,
    stamp_changes,
    stamp_some_changes,
)
from lmsauth.canvas.export import EXPORTED_TABLES
from lmsauth.core import clock
from lmsauth.core.db import Database
from tests.canvas.courses.conftest import enroll, make_course
from tests.conftest import TEST_DATABASE_URL, run


def test_every_exported_table_has_its_triggers(settings) -> None:
    async def work() -> set[str]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                return await installed_triggers(session)
        finally:
            await db.dispose()

    names = run(work())
    for table in EXPORTED_TABLES:
        db_table = table.captured.db_table
        assert any(name.startswith(f"lmsauth_capture_{db_table}") for name in names), table.name


async def _logged(db: Database, table: str) -> list[int]:
    """The keys logged for ``table``: the stamped ones, then those waiting for a stamp."""
    keys: list[int] = []
    async with db.session() as session:
        for model in (ExportChange, PendingChange):
            keys += await session.scalars(
                select(model.row_key).where(model.table_name == table).order_by(model.id)
            )
    return keys


async def _insert_account(session: AsyncSession, account_id: int) -> None:
    await session.execute(
        text(
            "INSERT INTO accounts (id, name, uuid, lti_context_id, created_at) "
            "VALUES (:id, 'A', :uuid, :uuid, :now)"
        ),
        {"id": account_id, "uuid": f"u{account_id}", "now": clock.now().replace(tzinfo=None)},
    )


def test_a_writer_appends_to_the_pending_table_only(settings) -> None:
    """A change is written where only its key is indexed; the stamped log (three indexes) is
    written when it is stamped, and its rows come out of the pending table then."""

    async def work() -> tuple[int, int, int, int]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await stamp_changes(session, clock.now())  # whatever the fixtures logged
            async with db.session() as session:
                before = await session.scalar(select(func.count()).select_from(ExportChange))
            async with db.session(write=True) as session:
                await _insert_account(session, 8)
            async with db.session() as session:
                written = await session.scalar(select(func.count()).select_from(ExportChange))
                pending = await session.scalar(select(func.count()).select_from(PendingChange))
            async with db.session(write=True) as session:
                await stamp_changes(session, clock.now())
            async with db.session() as session:
                left = await session.scalar(select(func.count()).select_from(PendingChange))
            assert before is not None and written is not None and pending is not None and left is not None
            return written - before, pending, left, len(await _logged(db, "accounts"))
        finally:
            await db.dispose()

    assert run(work()) == (0, 1, 0, 1)


def test_inserts_updates_and_deletes_are_logged_and_rollbacks_are_not(settings) -> None:
    async def work() -> None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await _insert_account(session, 7)
            assert await _logged(db, "accounts") == [7]
            async with db.session(write=True) as session:
                await session.execute(text("UPDATE accounts SET name = 'B' WHERE id = 7"))
                await session.execute(text("UPDATE accounts SET name = 'B' WHERE id = 7"))  # no change
            assert await _logged(db, "accounts") == [7, 7]
            with pytest.raises(RuntimeError):
                async with db.session(write=True) as session:
                    await session.execute(text("UPDATE accounts SET name = 'C' WHERE id = 7"))
                    raise RuntimeError("rolled back")
            assert await _logged(db, "accounts") == [7, 7]
            async with db.session(write=True) as session:
                await session.execute(text("DELETE FROM accounts WHERE id = 7"))
            assert await _logged(db, "accounts") == [7, 7, 7]
        finally:
            await db.dispose()

    run(work())


def test_a_course_deleted_logs_the_enrollments_its_cascade_deletes(settings, directory) -> None:
    """Deleting a course deletes its enrollments by ``ON DELETE CASCADE``: the triggers of
    ``enrollments`` see those deletes too (on SQLite as on PostgreSQL), so a replica loses them."""
    course = make_course(directory)
    first = enroll(directory, course, directory.user(login="a@example.edu"), "StudentEnrollment")
    second = enroll(directory, course, directory.user(login="b@example.edu"), "TeacherEnrollment")

    async def work() -> tuple[list[int], list[int]]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await session.execute(text("DELETE FROM export_changes"))
                await session.execute(text("DELETE FROM export_changes_pending"))
            async with db.session(write=True) as session:
                await session.execute(text("DELETE FROM courses WHERE id = :id"), {"id": course})
            return await _logged(db, "courses"), sorted(await _logged(db, "enrollments"))
        finally:
            await db.dispose()

    assert run(work()) == ([course], [first, second])


def test_stamps_only_grow_even_when_the_clock_goes_back(settings) -> None:
    async def work() -> None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                first = await stamp_changes(session, clock.now())
            async with db.session(write=True) as session:
                second = await stamp_changes(session, clock.now() - timedelta(hours=1))
            assert second > first
        finally:
            await db.dispose()

    run(work())


@pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="SQLite has one writer at a time: commits come in start order"
)
def test_a_change_that_commits_late_lands_in_the_next_window_not_in_none(settings) -> None:
    """Two instances write at once on PostgreSQL: the earlier transaction commits last. Its
    change is stamped when it becomes visible, so the window after the stamp holds it."""

    async def work() -> None:
        one, two = Database(settings.resolved_database_url), Database(settings.resolved_database_url)
        insert = text(
            "INSERT INTO accounts (id, name, uuid, lti_context_id, created_at) "
            "VALUES (:id, 'A', :uuid, :uuid, :now)"
        )
        now = clock.now().replace(tzinfo=None)
        try:
            async with one.session(write=True) as slow:
                await slow.execute(
                    insert, {"id": 100, "uuid": "u100", "now": now}
                )  # logged first, not committed
                async with two.session(write=True) as fast:
                    await fast.execute(insert, {"id": 101, "uuid": "u101", "now": now})
                async with two.session(write=True) as session:
                    boundary = await stamp_changes(session, clock.now())
                async with two.session() as session:
                    first_window = [
                        key
                        for key, _ in await changed_keys(
                            session, "accounts", boundary - timedelta(days=1), boundary, after=None, limit=100
                        )
                    ]
                assert first_window == [101]
                await asyncio.sleep(0.01)
            async with two.session(write=True) as session:
                later = await stamp_changes(session, clock.now())
            async with two.session() as session:
                second_window = [
                    key
                    for key, _ in await changed_keys(
                        session, "accounts", boundary, later, after=None, limit=100
                    )
                ]
                unstamped = await session.scalar(select(func.count()).select_from(PendingChange))
            assert second_window == [100]
            assert unstamped == 0
        finally:
            await one.dispose()
            await two.dispose()

    run(work())


def test_a_backlog_is_stamped_in_short_transactions_each_later_than_the_last(settings, monkeypatch) -> None:
    """A bulk load leaves many unstamped rows: the idle worker's stamping takes a short batch
    of them per transaction (on SQLite the write lock is free in between) and stamps them all,
    each transaction's stamp later than the one before."""
    monkeypatch.setattr(changes, "STAMP_CATCH_UP_ROWS", 2)

    async def work() -> tuple[list[bool], list[object]]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await stamp_changes(session, clock.now())  # whatever the fixtures logged
                last = await session.scalar(select(func.coalesce(func.max(ExportChange.id), 0)))
                session.add_all(PendingChange(table_name="users", row_key=key) for key in range(1, 6))
            dones = []
            for _ in range(3):
                dones.append(await stamp_some_changes(db, clock.now()))
            async with db.session() as session:
                stamps = list(
                    await session.scalars(
                        select(ExportChange.stamped_at)
                        .where(ExportChange.id > last)
                        .order_by(ExportChange.id)
                    )
                )
            return dones, stamps
        finally:
            await db.dispose()

    dones, stamps = run(work())
    assert dones == [False, False, True]  # 2 + 2 + 1 rows
    assert None not in stamps
    assert stamps[0] == stamps[1] < stamps[2] == stamps[3] < stamps[4]


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite's writer thread; PostgreSQL has no such turn")
def test_the_idle_catch_up_runs_whole_in_the_sqlite_writer_thread(settings, monkeypatch) -> None:
    """The idle worker's stamping is one hand-off to the writer's thread: as an AsyncSession's
    several statements, it held the write lock across the event loop's turns (the refresh's
    p99 at half the peak rate 38-44 ms against 8 ms without it)."""
    threads: list[str] = []
    move = changes._move_pending

    def recorded(session, stamp, rows):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return move(session, stamp, rows)

    monkeypatch.setattr(changes, "_move_pending", recorded)

    async def work() -> bool:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await _insert_account(session, 9)
            return await stamp_some_changes(db, clock.now())
        finally:
            await db.dispose()

    assert run(work()) is True
    assert threads and all(name.startswith("lmsauth-sqlite-writer") for name in threads), threads
