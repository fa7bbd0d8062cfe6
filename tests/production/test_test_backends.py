"""``scripts/_backends.sh``, which ``./scripts/test`` uses for its PostgreSQL + Redis run: with
nothing on the default ports (a developer's laptop) it starts throwaway servers, and stops them
at the end. CI and this machine have servers on the default ports, so ``./scripts/test`` alone
would never take that path: these tests point the defaults at closed ports and run it for real.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from redis import Redis

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def backends(script: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in bash with the two scripts sourced, as ``./scripts/test`` does, and none
    of this run's own backend variables."""
    names = ("LMSAUTH_TEST_DATABASE_URL", "LMSAUTH_TEST_REDIS_URL", "LMSAUTH_TEST_BACKENDS_DIR")
    env = {name: value for name, value in os.environ.items() if name not in names}
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source scripts/_env.sh; source scripts/_backends.sh; {script}"],
        cwd=REPO,
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


START = (
    "start_test_backends; "
    'echo "$LMSAUTH_TEST_DATABASE_URL $LMSAUTH_TEST_REDIS_URL ${LMSAUTH_TEST_BACKENDS_DIR:-}"'
)


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def database_facts(url: str) -> tuple[str, str]:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=10)
    try:
        return await connection.fetchval("SELECT current_database()"), await connection.fetchval(
            "SHOW data_directory"
        )
    finally:
        await connection.close()


def test_with_nothing_on_the_default_ports_throwaway_servers_start_and_stop() -> None:
    closed = {"LMSAUTH_TEST_PG_PORT": str(free_port()), "LMSAUTH_TEST_REDIS_PORT": str(free_port())}
    started = backends(START, **closed)
    assert started.returncode == 0, started.stderr
    database_url, redis_url, folder = started.stdout.split()
    try:
        assert "starting a throwaway PostgreSQL" in started.stderr
        assert "starting a throwaway Redis" in started.stderr
        database, data_directory = asyncio.run(database_facts(database_url))
        assert database == "test"
        assert data_directory.startswith(folder)
        redis = Redis.from_url(redis_url, socket_timeout=5)
        try:
            assert redis.ping()
            assert redis.config_get("dir")["dir"].startswith(folder)
        finally:
            redis.close()
    finally:
        stopped = backends("stop_test_backends", LMSAUTH_TEST_BACKENDS_DIR=folder)
    assert stopped.returncode == 0, stopped.stderr
    ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in (database_url, redis_url)]
    assert all(refused(port) for port in ports)
    assert not Path(folder).exists()


def test_servers_answering_on_the_default_ports_are_used_as_they_are() -> None:
    with socket.create_server(("127.0.0.1", 0)) as pg, socket.create_server(("127.0.0.1", 0)) as redis:
        pg_port, redis_port = pg.getsockname()[1], redis.getsockname()[1]
        found = backends(START, LMSAUTH_TEST_PG_PORT=str(pg_port), LMSAUTH_TEST_REDIS_PORT=str(redis_port))
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [
        f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/test",
        f"redis://127.0.0.1:{redis_port}/0",
    ]
    assert "throwaway" not in found.stderr


def test_a_server_that_cannot_start_fails_the_run_with_its_log(tmp_path: Path) -> None:
    """A Redis that exits at once must fail the run loudly, never be skipped; the EXIT trap
    still removes the folder (``_no_leftover_folders``)."""
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    failed = backends(
        "trap stop_test_backends EXIT; " + START,  # as ./scripts/test does
        LMSAUTH_TEST_DATABASE_URL="postgresql+asyncpg://given/test",
        LMSAUTH_TEST_REDIS_PORT=str(free_port()),
        PATH=f"{fake.parent}:{os.environ['PATH']}",
    )
    assert failed.returncode != 0
    assert "error: redis-server did not start" in failed.stderr
    assert failed.stdout == ""


@pytest.fixture(autouse=True)
def _no_leftover_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What the tests above started, they stopped: no throwaway folder of theirs is left. Each
    test's scripts make their folders in a temporary directory of its own (``TMPDIR``, short,
    as the servers' sockets live there), so that another worker's test running at the same
    time cannot count as this one's leftover."""
    own = Path(tempfile.mkdtemp(prefix="lb"))
    own.chmod(0o755)  # as /tmp lets them: the throwaway servers may run as another user
    monkeypatch.setenv("TMPDIR", str(own))
    try:
        yield
        assert list(own.glob("lmsauth-backends.*")) == []
    finally:
        shutil.rmtree(own, ignore_errors=True)
