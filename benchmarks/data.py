"""Benchmark data for lmsauth: small things through the public CLI, bulk rows through
SQLAlchemy with the project's own models and ``lmsauth.core.secrets.digest``.

Every token, code and session id inserted here is a real random value: the benchmark keeps
the plaintext of the ones it will present and stores only their digests, exactly as the
server does.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from benchmarks import procs
from lmsauth.canvas.models import AccessToken, AuthorizationCode, local_id
from lmsauth.canvas.tokens import ACCESS_TOKEN_LIFETIME, CODE_LIFETIME
from lmsauth.core import clock, secrets
from lmsauth.core import db as lmsauth_db

ROOT = Path(__file__).resolve().parent.parent
LMSAUTH = ROOT / ".venv" / "bin" / "lmsauth"
REDIRECT_URI = "http://localhost:5000/callback"
PORT = int(os.environ.get("LMSAUTH_BENCH_PORT") or procs.free_port())
BASE_URL = f"http://127.0.0.1:{PORT}"
BATCH = 5000

# 64 characters from Canvas's token alphabet, drawn from os.urandom through a byte table
# (byte % 46: a slight bias that is irrelevant to a benchmark, and ~50x faster than
# ``secrets.canvas_slug`` for a million tokens).
_SLUG_TABLE = bytes(secrets.CANVAS_SLUG_ALPHABET[b % 46].encode()[0] for b in range(256))


def fast_slugs(n: int, length: int = 64) -> Iterator[str]:
    raw = os.urandom(n * length).translate(_SLUG_TABLE).decode()
    for i in range(n):
        yield raw[i * length : (i + 1) * length]


def make_engine(url: str) -> AsyncEngine:
    """lmsauth's own engine (same pragmas and types), with a long statement timeout where the
    installed ``make_engine`` bounds statements: bulk loads take longer than a request may."""
    try:
        return lmsauth_db.make_engine(url, timeout=600.0)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return lmsauth_db.make_engine(url)


def cli(env: dict[str, str], *args: str) -> Any:
    """Run ``lmsauth ARGS`` and return its JSON output."""
    done = subprocess.run(
        [str(LMSAUTH), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"lmsauth {' '.join(args)} failed: {done.stderr[-800:]}")
    return json.loads(done.stdout)


def cli_has(env: dict[str, str], *args: str) -> bool:
    """Whether the installed CLI knows this command (used to detect services still being built)."""
    done = subprocess.run(
        [str(LMSAUTH), *args, "--help"], env=env, capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


@dataclass
class Canvas:
    """The Canvas objects every OAuth2 scenario uses, created through the CLI."""

    user_id: int
    key_id: int
    client_id: str
    client_secret: str


BENCH_LOGIN = "bench@example.edu"
BENCH_PASSWORD = "bench-password-0123456789"


def make_canvas(env: dict[str, str]) -> Canvas:
    user = cli(
        env,
        "user",
        "create",
        "--login",
        BENCH_LOGIN,
        "--password",
        BENCH_PASSWORD,
        "--name",
        "Bench Student",
        "--email",
        "bench@example.edu",
        "--json",
    )
    key = cli(env, "developer-key", "create", "--name", "bench", "--redirect-uri", REDIRECT_URI, "--json")
    return Canvas(
        user_id=int(user["id"]),
        key_id=local_id(int(key["client_id"])),
        client_id=str(key["client_id"]),
        client_secret=str(key["client_secret"]),
    )


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def insert_rows(engine: AsyncEngine, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    """Batched executemany INSERTs with the model's table (its Python-side defaults apply)."""
    batch: list[dict[str, Any]] = []
    done = 0
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # this loader's own connection: a big page cache for random-key index inserts
            await conn.execute(text("PRAGMA cache_size=-262144"))
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                await conn.execute(insert(table), batch)
                done += len(batch)
                batch = []
                if done % 100_000 == 0:
                    await conn.commit()
        if batch:
            await conn.execute(insert(table), batch)
        await conn.commit()


def insert_access_tokens(
    url: str, canvas: Canvas, n: int, keep: int, *, touched: bool = True
) -> list[tuple[str, str]]:
    """``n`` live access tokens (1-hour expiry, with refresh tokens) for the bench user and key.

    Returns ``(access, refresh)`` plaintexts of ``keep`` of them, spread uniformly over the
    ``n`` rows. ``touched``: ``last_used_at`` is now, so the first API call of each token does
    not write (Canvas's ``used!`` happens once per 10 minutes), as for tokens in steady use.
    """
    kept: list[tuple[str, str]] = []
    chosen = set(random.sample(range(n), min(keep, n)))
    now = clock.now()

    def rows() -> Iterator[dict[str, Any]]:
        for i, (access, refresh) in enumerate(zip(fast_slugs(n), fast_slugs(n), strict=True)):
            if i in chosen:
                kept.append((access, refresh))
            yield {
                "user_id": canvas.user_id,
                "developer_key_id": canvas.key_id,
                "token_digest": secrets.digest(access),
                "refresh_digest": secrets.digest(refresh),
                "token_hint": access[:5],
                "scopes": [],
                "purpose": "bench",
                "remember_access": False,
                "expires_at": now + ACCESS_TOKEN_LIFETIME,
                "permanent_expires_at": None,
                "workflow_state": "active",
                "authorization_code_id": None,
                "created_at": now,
                "updated_at": now,
                "last_used_at": now if touched else None,
            }

    async def work() -> None:
        engine = make_engine(url)
        try:
            await insert_rows(engine, AccessToken.__table__, rows())
        finally:
            await engine.dispose()

    _run(work())
    random.shuffle(kept)
    return kept


def insert_codes(url: str, canvas: Canvas, n: int) -> list[str]:
    """``n`` fresh authorization codes, as ``tokens.issue_code`` stores them (10-minute life)."""
    codes = [secrets.hex_token(64) for _ in range(n)]
    now = clock.now()

    def rows() -> Iterator[dict[str, Any]]:
        for code in codes:
            yield {
                "code_digest": secrets.digest(code),
                "developer_key_id": canvas.key_id,
                "user_id": canvas.user_id,
                "scopes": [],
                "purpose": None,
                "remember_access": False,
                "redirect_uri": REDIRECT_URI,
                "code_challenge": None,
                "created_at": now,
                "expires_at": now + CODE_LIFETIME,
                "redeemed_at": None,
            }

    async def work() -> None:
        engine = make_engine(url)
        try:
            await insert_rows(engine, AuthorizationCode.__table__, rows())
        finally:
            await engine.dispose()

    _run(work())
    return codes


def count_rows(url: str, table: Any) -> int:
    async def work() -> int:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
        finally:
            await engine.dispose()

    result: int = _run(work())
    return result


async def async_stored_bytes(engine: AsyncEngine, table_name: str, sqlite_path: Path | None) -> int:
    """Bytes the database holds for a table with its indexes (PostgreSQL), or the whole SQLite
    file (WAL checkpointed first), so that a before/after difference gives bytes per row."""
    async with engine.connect() as conn:
        if sqlite_path is not None:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            await conn.commit()
            pages = (await conn.execute(text("PRAGMA page_count"))).scalar_one()
            size = (await conn.execute(text("PRAGMA page_size"))).scalar_one()
            return int(pages) * int(size)
        value = await conn.execute(text(f"SELECT pg_total_relation_size('{table_name}')"))
        return int(value.scalar_one())


def stored_bytes(url: str, table_name: str, sqlite_path: Path | None) -> int:
    async def work() -> int:
        engine = make_engine(url)
        try:
            return await async_stored_bytes(engine, table_name, sqlite_path)
        finally:
            await engine.dispose()

    result: int = _run(work())
    return result


async def sync_sequence(conn: AsyncConnection, table: str) -> None:
    """After rows were inserted with explicit ids, move PostgreSQL's id sequence past them."""
    await conn.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"GREATEST((SELECT MAX(id) FROM {table}), 1))"
        )
    )
    await conn.commit()


def write_values(path: Path, values: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(values) + "\n")
    return path


def timed(label: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    t0 = time.monotonic()
    out = fn(*args, **kwargs)
    print(f"  {label}: {time.monotonic() - t0:.1f} s", flush=True)
    return out


def recreate_pg_database(admin_url: str, name: str) -> None:
    """DROP and CREATE the benchmark's own PostgreSQL database (never any other)."""
    assert name.startswith("lmsauth_bench")

    async def work() -> None:
        engine = make_engine(admin_url)
        try:
            async with engine.connect() as conn:
                conn2 = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn2.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await conn2.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    _run(work())
