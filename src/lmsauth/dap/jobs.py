"""DAP query jobs: the query a client posts, the job that answers it, and the worker that does
the work off the request path (spec B4, B5, B6).

The queue is the ``dap_jobs`` table itself, claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``
on PostgreSQL (as procrastinate does; on SQLite the clause is left out and the one write lock
serialises claims), so the embedded default and PostgreSQL share one code path. Not
procrastinate itself: it needs PostgreSQL (no SQLite), its own schema and worker process, and
the job's row is already the state the API answers with (B5), which a second queue would have to
mirror. Not arq: Redis is optional here, and a job must outlive Redis being flushed.

A claim is a random token with a lease; the worker renews the lease as it goes, and a job whose
lease ran out (its instance died or was stopped) is claimed again by any instance and goes on
after the last finished object (``cursor``). Work that a worker does after losing its claim is
never recorded: every step checks the claim in the transaction that records it. A job that
keeps failing to finish is failed with an error the client prints.

Snapshots read the live table in key order, a page at a time; incrementals read the change log
(``canvas.export``) for the keys changed in ``[since, until)`` and each row as it is now. Each
output object holds up to ``dap_rows_per_object`` rows, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.export import (
    ExportedTable,
    change_window,
    exported_table,
    prune_changes,
    read_changed_rows,
    read_rows,
    stamp_changes,
    stamp_some_changes,
)
from lmsauth.core import clock, secrets
from lmsauth.core.db import Database
from lmsauth.dap.formats import EXTENSIONS, Encoder, Record, gzip_compressor
from lmsauth.dap.models import DapJob, DapObject
from lmsauth.dap.objects import ObjectStore
from lmsauth.settings import Settings

log = logging.getLogger("lmsauth.dap.jobs")

JOB_LIFETIME = timedelta(hours=24)  # spec B4: jobs and their objects go 24 h after they started
PAGE_ROWS = 5000
MAX_ATTEMPTS = 3
WAITING, RUNNING, COMPLETE, FAILED = "waiting", "running", "complete", "failed"
LIVE = (WAITING, RUNNING)


@dataclass(frozen=True)
class Query:
    """A validated query body (spec B4)."""

    format: str
    mode: str | None
    since: datetime | None
    until: datetime | None

    @property
    def incremental(self) -> bool:
        return self.since is not None


class LostClaim(Exception):
    """Another worker holds the job now (our lease ran out): stop without recording anything."""


class JobFailure(Exception):
    """The job cannot be done; ``error_type`` and ``message`` are what the client is shown."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def request_key(client_id: str, namespace: str, table: str, query: Query) -> str:
    parts = [
        client_id,
        namespace,
        table,
        query.format,
        query.mode or "",
        _iso(query.since) or "",
        _iso(query.until) or "",
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def job_document(job: DapJob, objects: list[str]) -> dict[str, Any]:
    """The job as the client decodes it, exactly the members of its state (spec B5)."""
    body: dict[str, Any] = {"id": job.id, "status": job.status, "expires_at": _iso(job.expires_at)}
    if job.status == COMPLETE:
        body["objects"] = [{"id": object_id} for object_id in objects]
        body["schema_version"] = job.schema_version
        if job.since is None:
            body["at"] = _iso(job.at)
        else:
            body["since"] = _iso(job.since)
            body["until"] = _iso(job.at)
    elif job.status == FAILED:
        body["error"] = {
            "type": job.error_type or "ProcessingError",
            "uuid": job.error_uuid or "",
            "message": job.error_message or "The job failed.",
        }
    return body


async def job_objects(session: AsyncSession, job_id: str) -> list[str]:
    rows = await session.scalars(
        select(DapObject.id).where(DapObject.job_id == job_id).order_by(DapObject.part)
    )
    return list(rows)


async def find_job(session: AsyncSession, job_id: str, client_id: str) -> DapJob | None:
    """The client's job, unless it expired (spec B4: gone 24 h after it started)."""
    job = await session.get(DapJob, job_id)
    if job is None or job.client_id != client_id or job.expires_at <= clock.now():
        return None
    return job


async def submit(
    session: AsyncSession, client_id: str, namespace: str, table: ExportedTable, query: Query
) -> DapJob:
    """The live job for this query if there is one (spec B4), else a new waiting job."""
    key = request_key(client_id, namespace, table.name, query)
    now = clock.now()
    existing = await session.scalar(
        select(DapJob)
        .where(DapJob.request_key == key, DapJob.status.in_(LIVE), DapJob.expires_at > now)
        .order_by(DapJob.created_at)
        .limit(1)
    )
    if existing is not None:
        return existing
    job = DapJob(
        id=secrets.url_token(24),
        client_id=client_id,
        request_key=key,
        namespace=namespace,
        table_name=table.name,
        format=query.format,
        mode=query.mode,
        since=query.since,
        until=query.until,
        status=WAITING,
        created_at=now,
        expires_at=now + JOB_LIFETIME,
        schema_version=table.version,
        attempts=0,
        parts=0,
        rows=0,
    )
    session.add(job)
    await session.flush()
    return job


async def incremental_window(session: AsyncSession) -> tuple[datetime | None, datetime | None]:
    """``(kept_since, latest stamp)`` of the change log: what an incremental may ask for."""
    return await change_window(session)


class JobRunner:
    """This instance's worker: claims one job at a time and runs it to its end."""

    def __init__(self, settings: Settings, db: Database, store: ObjectStore) -> None:
        self.db = db
        self.store = store
        self.rows_per_object = settings.dap_rows_per_object
        self.lease = timedelta(seconds=settings.dap_job_lease_seconds)
        self.poll_seconds = settings.dap_job_poll_seconds
        self.retention = timedelta(days=settings.dap_change_retention_days)
        self.wake = asyncio.Event()

    async def run_forever(self) -> None:
        while True:
            try:
                ran = await self.run_one()
            except Exception:  # a broken claim or store must not stop the worker for good
                log.exception("DAP job worker step failed")
                ran = False
            if not ran:
                await self.stamp()
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_seconds)

    async def stamp(self) -> None:
        """Stamp the changes committed since the last stamp: an idle worker does it every
        ``dap_job_poll_seconds``, so a change's time in the log is late by at most that. In
        short transactions, so that a bulk load's million rows never hold the write lock long."""
        try:
            await self.catch_up()
        except Exception:  # the database is away: the next poll tries again
            log.warning("stamping the change log failed", exc_info=True)

    async def catch_up(self) -> None:
        while not await stamp_some_changes(self.db, clock.now()):
            pass  # one short transaction per batch, until none is left

    async def run_one(self) -> bool:
        """Claim and run the next job; False when there was none."""
        claimed = await self.claim()
        if claimed is None:
            return False
        job_id, claim = claimed
        try:
            await self.work(job_id, claim)
        except LostClaim:
            log.info("DAP job %s: claim lost to another worker", job_id)
        except JobFailure as failure:
            await self.fail(job_id, claim, failure.error_type, failure.message)
        except (TimeoutError, DBAPIError):
            # The database was away or slow: give the job back to the queue (its attempts are
            # counted at each claim, so one that keeps failing still ends, failed).
            log.warning("DAP job %s interrupted; it will be taken again", job_id, exc_info=True)
            await self.release(job_id, claim)
        except Exception:
            log.exception("DAP job %s failed", job_id)
            await self.fail(job_id, claim, "ProcessingError", "The job failed while writing its output.")
        return True

    async def claim(self) -> tuple[str, str] | None:
        now = clock.now()
        async with self.db.session(write=True) as session:
            job = await session.scalar(
                select(DapJob)
                .where(
                    or_(DapJob.status == WAITING, and_(DapJob.status == RUNNING, DapJob.lease_until < now)),
                    DapJob.expires_at > now,
                )
                .order_by(DapJob.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job is None:
                return None
            job.attempts += 1
            job.claim = secrets.url_token(16)
            if job.attempts > MAX_ATTEMPTS:
                job.status = FAILED
                job.error_type, job.error_uuid = "ProcessingError", str(uuid.uuid4())
                job.error_message = f"The job was interrupted {MAX_ATTEMPTS} times; post the query again."
                return None
            job.status = RUNNING
            job.lease_until = now + self.lease
            return job.id, job.claim

    async def _held(self, session: AsyncSession, job_id: str, claim: str) -> DapJob:
        job = await session.get(DapJob, job_id, with_for_update=True)
        if job is None or job.claim != claim or job.status != RUNNING:
            raise LostClaim(job_id)
        return job

    async def renew(self, job_id: str, claim: str) -> None:
        async with self.db.session(write=True) as session:
            result = await session.execute(
                update(DapJob)
                .where(DapJob.id == job_id, DapJob.claim == claim, DapJob.status == RUNNING)
                .values(lease_until=clock.now() + self.lease)
            )
            if not getattr(result, "rowcount", 1):
                raise LostClaim(job_id)

    async def release(self, job_id: str, claim: str) -> None:
        """Back to ``waiting`` (at ``cursor``), for any instance to claim again."""
        with contextlib.suppress(LostClaim, TimeoutError, DBAPIError):
            async with self.db.session(write=True) as session:
                job = await self._held(session, job_id, claim)
                job.status, job.claim, job.lease_until = WAITING, None, None

    async def fail(self, job_id: str, claim: str, error_type: str, message: str) -> None:
        with contextlib.suppress(LostClaim):
            async with self.db.session(write=True) as session:
                job = await self._held(session, job_id, claim)
                job.status = FAILED
                job.claim = None
                job.error_type, job.error_uuid, job.error_message = error_type, str(uuid.uuid4()), message

    async def _start(self, job_id: str, claim: str) -> DapJob:
        """Fix the job's point in time on its first run: stamp the change log, then check the
        incremental's window against what the log holds."""
        async with self.db.session(write=True) as session:
            job = await self._held(session, job_id, claim)
            if job.at is not None:
                return job
        await self.catch_up()  # the backlog first, in short transactions: the last one is small
        async with self.db.session(write=True) as session:
            stamp = await stamp_changes(session, clock.now())
            kept_since, _ = await change_window(session)
        async with self.db.session(write=True) as session:
            job = await self._held(session, job_id, claim)
            if job.since is not None:
                until = job.until or stamp
                if kept_since is None or job.since < kept_since:
                    raise JobFailure("SnapshotRequiredError", "The changes since then are no longer kept.")
                if until > stamp:
                    raise JobFailure("OutOfRangeError", "until is later than the latest data.")
                job.at = until
            else:
                job.at = stamp
            return job

    async def work(self, job_id: str, claim: str) -> None:
        job = await self._start(job_id, claim)
        table = exported_table(job.table_name)
        if table is None:
            raise JobFailure("NotFoundError", f"The table {job.table_name!r} is no longer exported.")
        assert job.at is not None
        encoder = Encoder(table, job.format, incremental=job.since is not None)
        cursor, part, attempt = job.cursor, job.parts, job.attempts
        renew_every = self.lease / 3
        last_renewal = clock.now()
        done = False
        while not done:
            object_id = f"{job.id}/part-{part:05d}-{attempt}.{EXTENSIONS[job.format]}.gz"
            writer = await self.store.writer(object_id)
            compressor = gzip_compressor()
            await writer.write(compressor.compress(encoder.header()))
            rows = 0
            while rows < self.rows_per_object:
                limit = min(PAGE_ROWS, self.rows_per_object - rows)
                records, cursor = await self._page(table, job, cursor, limit)
                if records:
                    data = await asyncio.to_thread(compressor.compress, encoder.encode(records))
                    await writer.write(data)
                    rows += len(records)
                if len(records) < limit:
                    done = True
                    break
                if clock.now() - last_renewal > renew_every:
                    await self.renew(job_id, claim)
                    last_renewal = clock.now()
            await writer.write(compressor.flush())
            size = await writer.finish()
            if rows == 0 and part > 0:
                done = True
                await self._finish(job_id, claim, None, cursor, 0)
                break
            done_object = DapObject(id=object_id, job_id=job_id, part=part, rows=rows, size=size)
            await self._finish(job_id, claim, done_object, cursor, rows)
            part += 1
            last_renewal = clock.now()
        await self._complete(job_id, claim)

    async def _page(
        self, table: ExportedTable, job: DapJob, cursor: int | None, limit: int
    ) -> tuple[list[Record], int | None]:
        assert job.at is not None
        async with self.db.session() as session:
            if job.since is None:
                rows = await read_rows(session, table, after=cursor, limit=limit)
                at = job.at
                return [(at, None, row[0], row) for row in rows], (rows[-1][0] if rows else cursor)
            changed = await read_changed_rows(session, table, job.since, job.at, after=cursor, limit=limit)
        records: list[Record] = [
            (stamped, "U" if row is not None else "D", key, row) for key, stamped, row in changed
        ]
        return records, (changed[-1][0] if changed else cursor)

    async def _finish(
        self, job_id: str, claim: str, obj: DapObject | None, cursor: int | None, rows: int
    ) -> None:
        """Record a finished object and how far the job got, if the claim is still ours."""
        async with self.db.session(write=True) as session:
            job = await self._held(session, job_id, claim)
            if obj is not None:
                session.add(obj)
                job.parts += 1
            job.cursor = cursor
            job.rows += rows
            job.lease_until = clock.now() + self.lease

    async def _complete(self, job_id: str, claim: str) -> None:
        async with self.db.session(write=True) as session:
            job = await self._held(session, job_id, claim)
            job.status = COMPLETE
            job.claim = None
            job.lease_until = None

    async def sweep(self) -> None:
        """Forget expired jobs and their objects, stamp pending changes, prune old ones."""
        now = clock.now()
        async with self.db.session() as session:
            expired = list(await session.scalars(select(DapJob.id).where(DapJob.expires_at <= now)))
        for job_id in expired:
            await self.store.remove_job(job_id)
            async with self.db.session(write=True) as session:
                await session.execute(delete(DapJob).where(DapJob.id == job_id))
        await self.catch_up()
        async with self.db.session(write=True) as session:
            await prune_changes(session, now - self.retention)
