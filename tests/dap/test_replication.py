"""The real dap CLI's data commands against a live server: ``snapshot`` and ``incremental`` in
each format, then the replicator (``initdb``, ``syncdb``) keeping a PostgreSQL copy of every
table (courses and enrollments too) equal to the server's, row by row, through changes made by
the CLI, the API and SQL.

The copy lives in a database of its own on the test PostgreSQL server, on both halves of the
suite (``LMSAUTH_TEST_REPLICA_SERVER``, else ``LMSAUTH_TEST_DATABASE_URL``, else
127.0.0.1:5432). ``dap_answer_wait_seconds`` lets a job that finishes quickly come back
complete from its POST, so the client skips its 5-second polls; one test keeps the polls.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from lmsauth.canvas.export import EXPORTED_TABLES, read_rows
from lmsauth.cli import main
from lmsauth.core.db import Database
from tests.conftest import run
from tests.dap.jobs_helpers import tsv_rows
from tests.dap.test_real_client import dap
from tests.identity.helpers import make_client

TABLES = sorted(table.name for table in EXPORTED_TABLES)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"dap_answer_wait_seconds": 10.0})


@pytest.fixture
def credentials(live_server):
    return make_client(live_server.settings, principal="inst-1")


def _server_url() -> str:
    raw = (
        os.environ.get("LMSAUTH_TEST_REPLICA_SERVER")
        or os.environ.get("LMSAUTH_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/test"
    )
    return make_url(raw).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(statement: str) -> None:
    async def work() -> None:
        connection = await asyncpg.connect(_server_url(), timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(work())


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database for the dap replicator; its connection string."""
    name = f"lmsauth_replica_{os.getpid()}_{tmp_path.name}".lower()[:60]
    _admin(f'DROP DATABASE IF EXISTS "{name}"')
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(_server_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def server_rows(settings, table_name: str) -> dict[int, dict[str, Any]]:
    table = next(table for table in EXPORTED_TABLES if table.name == table_name)
    names = [column.name for column in table.columns]

    async def work() -> list[tuple[Any, ...]]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                return await read_rows(session, table, after=None, limit=1_000_000)
        finally:
            await db.dispose()

    return {row[0]: {n: _plain(v) for n, v in zip(names, row, strict=True)} for row in run(work())}


def replica_rows(url: str, table_name: str) -> dict[int, dict[str, Any]]:
    async def work() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            return list(await connection.fetch(f'SELECT * FROM canvas."{table_name}" ORDER BY id'))
        finally:
            await connection.close()

    return {row["id"]: {key: _plain(value) for key, value in row.items()} for row in run(work())}


def assert_replica_equals_server(settings, url: str) -> None:
    for table in TABLES:
        assert replica_rows(url, table) == server_rows(settings, table), table


def ok(result) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return str(result.stdout)


def files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.gz"))


def count_records(path: Path) -> int:
    content = gzip.decompress(path.read_bytes()).decode()
    if path.name.endswith(".json.gz"):
        return len([json.loads(line) for line in content.splitlines()])
    if path.name.endswith(".csv.gz"):
        return len(list(csv.DictReader(io.StringIO(content))))
    return len(tsv_rows([content]))


class Cli:
    """``lmsauth`` verbs as an operator runs them, over the test's database."""

    def __init__(self, settings) -> None:
        self.env = {"LMSAUTH_DATA_DIR": str(settings.data_dir), "LMSAUTH_SECRET_KEY": settings.secret_key}
        if settings.database_url:
            self.env["LMSAUTH_DATABASE_URL"] = settings.database_url

    def __call__(self, *args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output


def sql(settings, statement: str, **params: Any) -> None:
    """A writer that bypasses the ORM (as a raw-driver fast path or a DBA does)."""

    async def work() -> None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                await session.execute(text(statement), params)
        finally:
            await db.dispose()

    run(work())


def latest_snapshot_at(settings) -> str:
    """The ``at`` of the last snapshot job, as the client chains it into ``--since``."""

    async def work() -> Any:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                return (
                    await session.execute(
                        text("SELECT at FROM dap_jobs WHERE since IS NULL ORDER BY created_at DESC LIMIT 1")
                    )
                ).scalar_one()
        finally:
            await db.dispose()

    value = run(work())
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def test_snapshot_and_incremental_in_every_format(live_server, credentials, directory, tmp_path) -> None:
    for n in range(5):
        directory.user(login=f"u{n}@example.edu", name=f"User\t{n}\\ \n")
    expected = len(server_rows(live_server.settings, "users"))
    for file_format, extension in (("jsonl", "json"), ("csv", "csv"), ("tsv", "tsv")):
        out = tmp_path / f"snapshot-{file_format}"
        ok(
            dap(
                live_server,
                credentials,
                "snapshot",
                "--namespace",
                "canvas",
                "--table",
                "users",
                "--format",
                file_format,
                "--output-directory",
                str(out),
                cwd=tmp_path / "run",
            )
        )
        written = files(out)
        assert written and all(path.name.endswith(f".{extension}.gz") for path in written)
        assert sum(count_records(path) for path in written) == expected
    since = latest_snapshot_at(live_server.settings)
    directory.user(login="late@example.edu", name="Late")
    sql(live_server.settings, "UPDATE users SET name = 'Renamed' WHERE id = 1")
    for file_format in ("jsonl", "csv", "tsv"):
        out = tmp_path / f"incremental-{file_format}"
        ok(
            dap(
                live_server,
                credentials,
                "incremental",
                "--namespace",
                "canvas",
                "--table",
                "users",
                "--format",
                file_format,
                "--since",
                since,
                "--output-directory",
                str(out),
                cwd=tmp_path / "run",
            )
        )
        assert sum(count_records(path) for path in files(out)) == 2  # the new user and the renamed one


def test_initdb_then_syncdb_keep_a_copy_equal_to_the_server(
    live_server, credentials, directory, replica, tmp_path
) -> None:
    settings = live_server.settings
    cli = Cli(settings)
    cli(
        "user",
        "create",
        "--login",
        "ann@example.edu",
        "--password",
        "correct horse 1",
        "--name",
        "Ann Archer",
    )
    cli(
        "user",
        "create",
        "--login",
        "bob@example.edu",
        "--password",
        "correct horse 2",
        "--name",
        "Bob\tTab\\Slash\nLine",
    )
    directory.key(name="Gradebook", redirect_uris=["https://a.example/cb", "https://b.example/cb"])
    made = json.loads(cli("token", "create", "--user", "ann@example.edu", "--purpose", "warehouse", "--json"))
    biology = json.loads(cli("course", "create", "--name", "Biology 101", "--sis-id", "BIO-101", "--json"))

    def enroll_in_biology(login: str, role: str, *options: str) -> None:
        cli("enrollment", "create", "--course", str(biology["id"]), "--user", login, "--role", role, *options)

    enroll_in_biology("ann@example.edu", "student")

    def run_dap(command: str) -> None:
        ok(
            dap(
                live_server,
                credentials,
                command,
                "--connection-string",
                replica,
                "--namespace",
                "canvas",
                "--table",
                "all",
                cwd=tmp_path / "run",
            )
        )

    run_dap("initdb")
    assert_replica_equals_server(settings, replica)

    # Changes through the CLI, the Canvas API, and SQL that bypasses the ORM.
    cli("user", "create", "--login", "cy@example.edu", "--password", "correct horse 3", "--name", "Cy")
    cli("user", "update", "bob@example.edu", "--name", "Robert")
    cli("user", "suspend", "ann@example.edu")
    cli("user", "unsuspend", "ann@example.edu")
    cli("user", "delete", "cy@example.edu")
    second = json.loads(cli("token", "create", "--user", "bob@example.edu", "--purpose", "api", "--json"))
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {second['token']}"})
    created = api.post("/api/v1/users/self/tokens", data={"token[purpose]": "made by the API"})
    assert created.status_code == 200, created.text
    assert api.delete(f"/api/v1/users/self/tokens/{created.json()['id']}").status_code == 200
    assert api.put("/api/v1/users/self", data={"user[short_name]": "Rob"}).status_code == 200
    cli("token", "revoke", str(made["id"]))
    sql(settings, "DELETE FROM access_tokens WHERE id = :id", id=made["id"])  # a sweep's hard delete
    sql(settings, "UPDATE developer_keys SET name = 'Gradebook 2' WHERE name = 'Gradebook'")

    # Courses and enrollments: made and edited by the CLI and the API (Bob, now an account
    # admin), edited by SQL, and a course hard-deleted with its enrollments (by cascade).
    chemistry = json.loads(cli("course", "create", "--name", "Chemistry\tLab", "--unpublished", "--json"))
    enroll_in_biology("bob@example.edu", "teacher")
    enroll_in_biology("ann@example.edu", "student", "--state", "inactive")  # an edit
    cli("user", "update", "bob@example.edu", "--admin")
    physics = api.post(
        "/api/v1/accounts/self/courses",
        data={
            "course[name]": "Physics",
            "course[sis_course_id]": "PHY-1",
            "offer": "true",
            "enroll_me": "true",
        },
    )
    assert physics.status_code == 200, physics.text
    enrolled = api.post(
        f"/api/v1/courses/{chemistry['id']}/enrollments",
        data={"enrollment[user_id]": str(made["user_id"]), "enrollment[type]": "StudentEnrollment"},
    )
    assert enrolled.status_code == 200, enrolled.text
    sql(settings, "UPDATE courses SET name = 'Biology 102' WHERE id = :id", id=biology["id"])
    run_dap("syncdb")
    assert_replica_equals_server(settings, replica)
    assert enrolled.json()["id"] in replica_rows(replica, "enrollments")
    sql(settings, "DELETE FROM courses WHERE id = :id", id=chemistry["id"])

    run_dap("syncdb")
    assert_replica_equals_server(settings, replica)
    assert made["id"] not in replica_rows(replica, "access_tokens")
    assert chemistry["id"] not in replica_rows(replica, "courses")
    assert enrolled.json()["id"] not in replica_rows(replica, "enrollments")
    assert replica_rows(replica, "courses")[biology["id"]]["name"] == "Biology 102"

    before = {table: replica_rows(replica, table) for table in TABLES}
    run_dap("syncdb")
    assert {table: replica_rows(replica, table) for table in TABLES} == before
