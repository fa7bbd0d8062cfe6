"""``core.db.Database``: on SQLite, a process's writers take the one write lock in turn (first
come first served, one pooled connection at a time) and a wait is bounded."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from lmsauth.core import db as db_module
from lmsauth.core.db import Database
from lmsauth.core.outage import is_outage
from lmsauth.settings import Settings


def _sqlite(settings: Settings) -> Database:
    if not settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("SQLite's write queue: the run without LMSAUTH_TEST_DATABASE_URL")
    return Database(settings.resolved_database_url)


async def test_concurrent_writers_commit_in_arrival_order_on_one_connection(settings: Settings) -> None:
    db = _sqlite(settings)
    connections = 0

    def opened(*_: object) -> None:
        nonlocal connections
        connections += 1

    event.listen(db.engine.sync_engine, "connect", opened)
    order: list[int] = []

    async def writer(n: int) -> None:
        async with db.session(write=True) as session:
            await session.execute(text("CREATE TABLE IF NOT EXISTS queue_probe (n INTEGER)"))
            await session.execute(text("INSERT INTO queue_probe (n) VALUES (:n)"), {"n": n})
            order.append(n)
            await asyncio.sleep(0)  # give the others every chance to overtake

    try:
        await asyncio.gather(*(writer(n) for n in range(32)))
        async with db.session() as session:
            stored = (await session.execute(text("SELECT n FROM queue_probe ORDER BY rowid"))).scalars().all()
    finally:
        await db.dispose()
    assert order == list(range(32)) == list(stored)
    # Waiting in SQLite's busy handler instead, each writer held a pooled connection: up to 15.
    assert connections <= 2


async def test_a_writer_that_cannot_get_its_turn_fails_as_an_outage(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _sqlite(settings)
    monkeypatch.setattr(db_module, "SQLITE_WRITE_WAIT_SECONDS", 0.2)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with db.session(write=True):
            holding.set()
            await release.wait()

    task = asyncio.create_task(holder())
    try:
        await holding.wait()
        with pytest.raises(TimeoutError) as raised:
            async with db.session(write=True):
                pass
        assert is_outage(raised.value)  # answered 503, as a locked database was
        # Readers never queue behind a writer.
        async with db.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        release.set()
        await task
        # The queue recovers: the next writer gets its turn at once.
        async with asyncio.timeout(2), db.session(write=True) as session:
            await session.execute(text("SELECT 1"))
    finally:
        release.set()
        await task
        await db.dispose()


async def test_a_failed_writer_gives_up_its_turn(settings: Settings) -> None:
    db = _sqlite(settings)
    try:
        with pytest.raises(RuntimeError):
            async with db.session(write=True):
                raise RuntimeError("the block failed")
        async with asyncio.timeout(2), db.session(write=True) as session:
            await session.execute(text("SELECT 1"))
    finally:
        await db.dispose()


async def test_a_writer_arriving_as_the_turn_passes_on_queues_and_is_still_bounded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn is taken without a timer only when it is free and no one is queued. Right after
    a release the lock is free, but the writer it woke has not run yet: a newcomer then must
    queue behind that one, its wait bounded as any other."""
    db = _sqlite(settings)
    monkeypatch.setattr(db_module, "SQLITE_WRITE_WAIT_SECONDS", 0.2)
    first_holds = asyncio.Event()
    release_first = asyncio.Event()
    release_second = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with db._sqlite_turn():
            first_holds.set()
            await release_first.wait()
        # The turn has just passed to `second`, which has not run yet.
        with pytest.raises(TimeoutError):
            async with db._sqlite_turn():
                order.append("newcomer")

    async def second() -> None:
        async with db._sqlite_turn():
            order.append("second")
            await release_second.wait()

    try:
        async with asyncio.timeout(5):  # an unbounded wait fails here instead of hanging
            one = asyncio.create_task(first())
            await first_holds.wait()
            two = asyncio.create_task(second())
            await asyncio.sleep(0.01)  # `second` is queued
            release_first.set()
            await one
            assert order == ["second"]
            release_second.set()
            await two
            async with db._sqlite_turn():  # free again, and taken at once
                order.append("last")
        assert order == ["second", "last"]
    finally:
        release_first.set()
        release_second.set()
        await db.dispose()
