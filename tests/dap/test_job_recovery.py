"""Jobs that do not run straight through: a worker that dies after an object (the job is
taken over and goes on from there), a worker that lost its claim (records nothing), a job
interrupted too often, and a job whose output cannot be written (failed, as the client shows)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from sqlalchemy import select, update

from lmsauth.canvas.export import exported_table
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.dap import jobs
from lmsauth.dap.models import DapJob, DapObject
from lmsauth.dap.objects import create_object_store
from tests.conftest import run
from tests.dap.jobs_helpers import post_query, wait_for
from tests.dap.test_real_client import dap
from tests.identity.helpers import access_token, make_client


class Crash(BaseException):
    """The process dying mid-job: nothing after it runs, not even ``except Exception``."""


async def _records(db: Database, store: Any, job_id: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        ids = list(
            await session.scalars(
                select(DapObject.id).where(DapObject.job_id == job_id).order_by(DapObject.part)
            )
        )
    found: list[dict[str, Any]] = []
    for object_id in ids:
        data = b"".join([piece async for piece in store.read(object_id)])
        found.extend(json.loads(line) for line in gzip.decompress(data).splitlines())
    return found


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"dap_object_store": "files", "dap_answer_wait_seconds": 10.0})


@pytest.mark.parametrize("store_kind", ["files", "database"])
def test_a_job_whose_worker_died_is_taken_over_and_goes_on_after_its_last_object(
    settings, directory, store_kind
) -> None:
    for n in range(5):
        directory.user(login=f"u{n}@example.edu", name=f"User {n}")
    small = settings.model_copy(
        update={"dap_rows_per_object": 2, "dap_job_lease_seconds": 5, "dap_object_store": store_kind}
    )
    users = exported_table("users")
    assert users is not None

    async def scenario() -> None:
        db = Database(small.resolved_database_url)
        store = create_object_store(small.dap_object_store, db, small.data_dir)
        try:
            async with db.session(write=True) as session:
                job = await jobs.submit(
                    session, "client-1", "canvas", users, jobs.Query("jsonl", None, None, None)
                )
            first = jobs.JobRunner(small, db, store)
            finish = first._finish
            calls = 0

            async def dies_after_one_object(*args: Any) -> None:
                nonlocal calls
                await finish(*args)
                calls += 1
                if calls == 1:
                    raise Crash

            first._finish = dies_after_one_object  # type: ignore[method-assign]
            with pytest.raises(Crash):
                await first.run_one()
            async with db.session() as session:
                stuck = await session.get(DapJob, job.id)
                assert stuck is not None
                assert (stuck.status, stuck.parts, stuck.cursor, stuck.attempts) == ("running", 1, 2, 1)
                old_claim = stuck.claim
            # Another instance finds nothing to take until the lease runs out.
            second = jobs.JobRunner(small, db, store)
            assert await second.run_one() is False
            clock.advance(6)
            assert await second.run_one() is True
            async with db.session() as session:
                done = await session.get(DapJob, job.id)
                assert done is not None and done.status == "complete" and done.attempts == 2
                objects = await jobs.job_objects(session, job.id)
            assert [name.rsplit("/", 1)[1] for name in objects] == [
                "part-00000-1.json.gz",
                "part-00001-2.json.gz",
                "part-00002-2.json.gz",
            ]
            keys = [record["key"]["id"] for record in await _records(db, store, job.id)]
            assert keys == [1, 2, 3, 4, 5]  # every row once, none twice
            # The dead worker's late work is not recorded.
            assert old_claim is not None
            with pytest.raises(jobs.LostClaim):
                await finish(job.id, old_claim, None, 99, 0)
        finally:
            await db.dispose()

    run(scenario())


def test_a_job_interrupted_too_often_fails_with_an_error_the_client_decodes(
    client, settings, monkeypatch
) -> None:
    token = access_token(client, make_client(settings))

    async def idle(self: Any) -> bool:
        return False

    async def interrupted_three_times(job_id: str) -> None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await session.execute(
                    update(DapJob)
                    .where(DapJob.id == job_id)
                    .values(status="running", attempts=jobs.MAX_ATTEMPTS, lease_until=clock.now())
                )
        finally:
            await db.dispose()

    # The job is made to look interrupted while the runner is still idle: with the runner back
    # first, its next poll could finish the job before the test touched it.
    with monkeypatch.context() as paused:
        paused.setattr(jobs.JobRunner, "run_one", idle)
        job_id = post_query(client, token, "users", format="jsonl").json()["id"]
        run(interrupted_three_times(job_id))
    client.app.state.dap_runner.wake.set()
    job = wait_for(client, token, job_id)
    assert set(job) == {"id", "status", "expires_at", "error"}
    assert job["status"] == "failed"
    assert set(job["error"]) == {"type", "uuid", "message"}
    assert "interrupted" in job["error"]["message"]


def test_a_job_that_cannot_write_its_output_fails_and_the_client_says_so(
    client, settings, tmp_path, request
) -> None:
    # The object folder cannot be made: a file stands in its place.
    (settings.data_dir / "dap-objects").write_text("not a folder")
    live = request.getfixturevalue("live_server")
    credentials = make_client(live.settings)
    result = dap(
        live, credentials, "snapshot", "--namespace", "canvas", "--table", "users", cwd=tmp_path / "run"
    )
    assert result.returncode == 5, result.stdout + result.stderr
    token = access_token(client, credentials)
    job = client.post(
        "/dap/query/canvas/table/users/data",
        json={"format": "jsonl"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert job["status"] == "failed"
    assert job["error"]["message"] == "The job failed while writing its output."
    # The client reads only the status of a failed job, not its error (dap/api.py get_table_data).
    assert "Query job ended with status: failed" in result.stdout + result.stderr


def test_a_job_that_meets_a_database_timeout_goes_back_to_the_queue(settings, directory) -> None:
    directory.user()
    users = exported_table("users")
    assert users is not None

    async def scenario() -> None:
        db = Database(settings.resolved_database_url)
        store = create_object_store(settings.dap_object_store, db, settings.data_dir)
        try:
            async with db.session(write=True) as session:
                job = await jobs.submit(
                    session, "client-1", "canvas", users, jobs.Query("csv", None, None, None)
                )
            runner = jobs.JobRunner(settings, db, store)
            start = runner._start

            async def slow_database(*args: Any) -> DapJob:
                raise TimeoutError

            runner._start = slow_database  # type: ignore[method-assign]
            assert await runner.run_one() is True
            async with db.session() as session:
                waiting = await session.get(DapJob, job.id)
                assert waiting is not None and (waiting.status, waiting.claim, waiting.attempts) == (
                    "waiting",
                    None,
                    1,
                )
            runner._start = start  # type: ignore[method-assign]
            assert await runner.run_one() is True
            async with db.session() as session:
                done = await session.get(DapJob, job.id)
                assert done is not None and (done.status, done.attempts) == ("complete", 2)
        finally:
            await db.dispose()

    run(scenario())


@pytest.mark.parametrize("store_kind", ["files", "database"])
def test_the_sweep_forgets_jobs_and_files_24_hours_after_they_started(
    settings, directory, store_kind
) -> None:
    directory.user()
    users = exported_table("users")
    assert users is not None
    chosen = settings.model_copy(update={"dap_object_store": store_kind})

    async def scenario() -> None:
        db = Database(chosen.resolved_database_url)
        store = create_object_store(store_kind, db, chosen.data_dir)
        try:
            async with db.session(write=True) as session:
                job = await jobs.submit(
                    session, "client-1", "canvas", users, jobs.Query("jsonl", None, None, None)
                )
            runner = jobs.JobRunner(chosen, db, store)
            assert await runner.run_one() is True
            async with db.session() as session:
                (object_id,) = await jobs.job_objects(session, job.id)
            await runner.sweep()
            assert [piece async for piece in store.read(object_id)]  # not yet
            clock.advance(24 * 3600)
            await runner.sweep()
            async with db.session() as session:
                assert await session.get(DapJob, job.id) is None
                assert await jobs.job_objects(session, job.id) == []
            with pytest.raises(FileNotFoundError):
                [piece async for piece in store.read(object_id)]
        finally:
            await db.dispose()

    run(scenario())
