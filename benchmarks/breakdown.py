"""Where scenario 2's time goes, piece by piece, in-process (no HTTP), on one core.

    taskset -c 0 .venv/bin/python -m benchmarks.breakdown URL TOKENS_FILE [CALLS]

Runs each step 2,000 times (sequentially) and prints (JSON on stdout) CPU microseconds per call: an empty
read transaction, the token lookup through the ORM (three entities, as lmsauth did before
``core.fastread``), the root-account query, the same lookup with SQLAlchemy Core selecting plain
columns, and what the server does now: ``canvas.bearer.authenticate`` (one compiled statement
on the driver, ``core.fastread``). Used to attribute the gap to the constant-response floor.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from lmsauth.canvas import bearer, tokens
from lmsauth.canvas.models import AccessToken, DeveloperKey, User
from lmsauth.core import secrets
from lmsauth.core.db import Database

N = 2000


async def main(url: str, values: list[str], n: int = N) -> dict[str, dict[str, float]]:
    db = Database(url)

    async def empty(t: str) -> None:
        async with db.session():
            pass

    async def orm_lookup(t: str) -> None:
        async with db.session() as session:
            result = await session.execute(
                select(AccessToken, User, DeveloperKey)
                .join(User, User.id == AccessToken.user_id)
                .join(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
                .where(AccessToken.token_digest == secrets.digest(t))
            )
            assert result.first() is not None

    async def root(t: str) -> None:
        async with db.session() as session:
            await tokens.root_account_id(session)

    async def authenticate(t: str) -> None:
        assert await bearer.authenticate(db, t) is not None

    async def core_lookup(t: str) -> None:
        async with db.engine.connect() as conn:
            result = await conn.execute(
                select(AccessToken.__table__, User.__table__.c.name, DeveloperKey.__table__.c.workflow_state)
                .join(User.__table__, User.__table__.c.id == AccessToken.__table__.c.user_id)
                .join(
                    DeveloperKey.__table__,
                    DeveloperKey.__table__.c.id == AccessToken.__table__.c.developer_key_id,
                )
                .where(AccessToken.__table__.c.token_digest == secrets.digest(t))
            )
            assert result.first() is not None

    steps: list[tuple[str, Callable[[str], Awaitable[None]]]] = [
        ("empty read transaction (BEGIN/COMMIT)", empty),
        ("token lookup, ORM, 3 entities, in a transaction", orm_lookup),
        ("root account query, in a transaction", root),
        ("token lookup, Core columns, no ORM session", core_lookup),
        ("bearer.authenticate (core.fastread: what the server runs)", authenticate),
    ]
    out: dict[str, dict[str, float]] = {}
    for label, step in steps:
        for t in values[:50]:
            await step(t)
        c0, w0 = time.process_time(), time.perf_counter()
        for i in range(n):
            await step(values[i % len(values)])
        cpu = (time.process_time() - c0) / n * 1e6
        wall = (time.perf_counter() - w0) / n * 1e6
        out[label] = {"cpu_us": round(cpu, 1), "wall_us": round(wall, 1)}
        print(f"{label:50s} {cpu:8.0f} us CPU {wall:8.0f} us wall", file=sys.stderr, flush=True)
    await db.dispose()
    return out


if __name__ == "__main__":
    import uvloop

    calls = int(sys.argv[3]) if len(sys.argv) > 3 else N
    print(json.dumps(uvloop.run(main(sys.argv[1], Path(sys.argv[2]).read_text().split(), calls))))
