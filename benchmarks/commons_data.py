"""Scenario 3's data: Commons sessions.

The consumer (and its Commons account) comes from the public CLI (``lmsauth commons consumer
create``); users as their first LTI launch records them and sessions as ``sessions.start``
stores them are bulk-inserted with Commons' own models, one digest per real random id.
Detection only: when Commons is not in this tree (or not mounted), scenario 3 is skipped and
the reason is reported; nothing stands in for it.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from starlette.routing import Match

from benchmarks import data
from benchmarks.load import Request
from lmsauth.core import clock, secrets

if TYPE_CHECKING:
    from benchmarks.lmsauth_bench import Backend

SESSIONS_PER_USER_LARGE = 10


def commons_path() -> str:
    return os.environ.get("LMSAUTH_COMMONS_PATH", "/commons").rstrip("/")


def available(env: dict[str, str]) -> str | None:
    """None when scenario 3 can run, else why not."""
    try:
        from lmsauth.commons import models  # noqa: F401
        from lmsauth.commons import sessions as commons_sessions  # noqa: F401
    except Exception as exc:
        return f"Commons models are not importable ({exc.__class__.__name__}: {exc})"
    if not data.cli_has(env, "commons", "consumer", "create"):
        return "the CLI has no `lmsauth commons consumer create` yet"
    try:
        from lmsauth.app import create_app
        from lmsauth.settings import Settings

        with tempfile.TemporaryDirectory() as folder:
            app = create_app(Settings(data_dir=Path(folder), secret_key="x" * 32))
            # Ask the router itself (a Mount, or a group of routes around one, may serve it).
            probe = {
                "type": "http",
                "method": "GET",
                "path": f"{commons_path()}/api/sessions/x",
                "root_path": "",
                "headers": [],
            }
            served = any(route.matches(probe)[0] is Match.FULL for route in app.routes)
    except Exception as exc:
        return f"the composed app could not be built ({exc.__class__.__name__}: {exc})"
    if not served:
        return f"Commons is not mounted at {commons_path()} in lmsauth.app yet"
    return None


@dataclass
class Sessions:
    ids: list[str]
    base: str

    expect_text = '"sid":'

    def request(self, values: Path) -> Request:
        data.write_values(values, self.ids)
        return Request(
            f"{self.base}{commons_path()}/api/sessions/x",
            path=f"{commons_path()}/api/sessions/{{T}}",
            header="X-Session-ID: {T}",
            values=values,
        )


_consumer_account: dict[str, int] = {}


def _account_id(b: Backend, env: dict[str, str]) -> int:
    from lmsauth.commons.models import LtiConsumer

    if b.url in _consumer_account:
        return _consumer_account[b.url]
    issued = data.cli(env, "commons", "consumer", "create", "--name", "Bench University", "--json")

    async def work() -> int:
        engine = data.make_engine(b.url)
        try:
            async with engine.connect() as conn:
                found = await conn.execute(
                    select(LtiConsumer.account_id).where(LtiConsumer.consumer_key == issued["consumer_key"])
                )
                return int(found.scalar_one())
        finally:
            await engine.dispose()

    account_id: int = asyncio.run(work())
    _consumer_account[b.url] = account_id
    return account_id


def make_sessions(
    b: Backend,
    env: dict[str, str],
    n: int,
    keep: int,
    *,
    facts: dict[str, Any] | None = None,
    fact_key: str = "",
) -> Sessions:
    """``n`` live sessions (``n`` users for the first thousand, then 10 sessions per user)."""
    from lmsauth.commons.models import CommonsSession, CommonsUser
    from lmsauth.commons.settings import CommonsSettings

    account_id = _account_id(b, env)
    lifetime = timedelta(seconds=CommonsSettings().session_lifetime_seconds)
    per_user = 1 if n <= 10_000 else SESSIONS_PER_USER_LARGE
    n_users = (n + per_user - 1) // per_user
    now = clock.now()
    kept: list[str] = []
    chosen = set(random.sample(range(n), min(keep, n)))

    async def work() -> None:
        engine = data.make_engine(b.url)
        try:
            async with engine.connect() as conn:
                first_user = int(
                    (await conn.execute(select(func.coalesce(func.max(CommonsUser.id), 0)))).scalar_one()
                )
            tag = secrets.url_token(6)

            def users() -> Iterator[dict[str, Any]]:
                for i in range(n_users):
                    lti = f"bench-{tag}-{i}"
                    yield {
                        "id": first_user + 1 + i,
                        "public_id": f"{lti}:bench-instance-guid",
                        "account_id": account_id,
                        "canvas_user_id": str(100_000 + first_user + i),
                        "canvas_api_domain": "canvas.bench.example",
                        "lti_user_id": lti,
                        "tool_consumer_instance_guid": "bench-instance-guid",
                        "full_name": f"Bench User {i}",
                        "locale": "en",
                        "roles": ["Learner"],
                        "first_launch_at": now,
                        "last_launch_at": now,
                        "terms_accepted_at": now,
                    }

            def sessions() -> Iterator[dict[str, Any]]:
                for i in range(n):
                    sid = secrets.url_token(32)
                    if i in chosen:
                        kept.append(sid)
                    yield {
                        "token_digest": secrets.digest(sid),
                        "user_id": first_user + 1 + i // per_user,
                        "origin": "api",
                        "csrf_token": secrets.url_token(24),
                        "created_at": now,
                        "expires_at": now + lifetime,
                    }

            await data.insert_rows(engine, CommonsUser.__table__, users())
            if b.sqlite_path is None:
                async with engine.connect() as conn:
                    await data.sync_sequence(conn, "commons_users")
            before = await data.async_stored_bytes(engine, "commons_sessions", b.sqlite_path)
            await data.insert_rows(engine, CommonsSession.__table__, sessions())
            after = await data.async_stored_bytes(engine, "commons_sessions", b.sqlite_path)
            if facts is not None and fact_key:
                facts[fact_key] = (after - before) / max(n, 1)
        finally:
            await engine.dispose()

    asyncio.run(work())
    random.shuffle(kept)
    return Sessions(kept, data.BASE_URL)
