"""Anonymous load against a running lmsauth, and what it costs everyone else (issue 15,
findings 2 and 3): login-page views and /login/oauth2/auth requests without a cookie, then
failed logins sent together, while ``/healthz`` is sampled throughout.

It starts nothing: point it at a server on this machine (``lmsauth serve --demo``) and, for
SQLite, at its database file, whose size (with its WAL) it prints before and after::

    LMSAUTH_DATA_DIR=$(mktemp -d) lmsauth serve --demo --port 8765 &
    python -m benchmarks.anonymous_load --base-url http://127.0.0.1:8765 --sqlite-file "$DIR/lmsauth.db"

With ``--database-url postgresql://...`` it prints ``pg_database_size`` instead. The load is
bounded (``--views``, ``--authorizations``, ``--failed-logins``) and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

DEMO_CLIENT_ID = "10000000000001"
DEMO_REDIRECT_URI = "http://localhost:5000/callback"
CSRF = re.compile(r'name="authenticity_token" value="([^"]+)"')


@dataclass
class Phase:
    name: str
    statuses: Counter[int] = field(default_factory=Counter)
    healthz_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        samples = self.healthz_ms
        latency = (
            f"healthz median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms "
            f"({len(samples)} samples)"
            if samples
            else "no healthz samples"
        )
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return f"{self.name:<34} {self.seconds:6.2f} s  {latency}  answers {{{answers}}}"


async def _sample_healthz(client: httpx.AsyncClient, phase: Phase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        response = await client.get("/healthz")
        phase.healthz_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        await asyncio.sleep(0.01)


async def _run_phase(
    base_url: str, phase: Phase, requests: list[tuple[str, dict[str, str]]], parallel: int
) -> None:
    """GET each (path, query) without cookies, ``parallel`` at a time, sampling /healthz."""
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=parallel + 1)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as load,
        httpx.AsyncClient(base_url=base_url, timeout=30) as probe,
    ):
        sampler = asyncio.create_task(_sample_healthz(probe, phase, stop))
        gate = asyncio.Semaphore(parallel)

        async def one(path: str, query: dict[str, str]) -> None:
            async with gate:
                load.cookies.clear()  # every request is a new, cookieless visitor
                response = await load.get(path, params=query, follow_redirects=False)
                phase.statuses[response.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(path, query) for path, query in requests))
        phase.seconds = time.perf_counter() - started
        stop.set()
        await sampler


async def _failed_logins(base_url: str, phase: Phase, count: int) -> None:
    """``count`` failed logins sent together, each from its own browser with a valid form."""
    browsers = [httpx.AsyncClient(base_url=base_url, timeout=60) for _ in range(count)]
    stop = asyncio.Event()
    try:
        forms = []
        for browser in browsers:
            page = await browser.get("/login/canvas")
            match = CSRF.search(page.text)
            if match is None:
                raise SystemExit("the login page has no authenticity_token")
            forms.append(match.group(1))
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as probe:
            sampler = asyncio.create_task(_sample_healthz(probe, phase, stop))
            await asyncio.sleep(0.2)  # a few samples before the logins start

            async def fail(index: int) -> None:
                response = await browsers[index].post(
                    "/login/canvas",
                    data={
                        "authenticity_token": forms[index],
                        # Each its own name, so the per-account delay never applies.
                        "pseudonym_session[unique_id]": f"nobody-{index}@example.invalid",
                        "pseudonym_session[password]": "not the password",
                    },
                )
                phase.statuses[response.status_code] += 1

            started = time.perf_counter()
            await asyncio.gather(*(fail(index) for index in range(count)))
            phase.seconds = time.perf_counter() - started
            stop.set()
            await sampler
    finally:
        for browser in browsers:
            await browser.aclose()


def _sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


async def _database_size(args: argparse.Namespace) -> int | None:
    if args.sqlite_file:
        return _sqlite_size(Path(args.sqlite_file))
    if args.database_url:
        import asyncpg

        connection = await asyncpg.connect(args.database_url.replace("+asyncpg", ""))
        try:
            size: int = await connection.fetchval("SELECT pg_database_size(current_database())")
            return size
        finally:
            await connection.close()
    return None


async def main(args: argparse.Namespace) -> None:
    base = args.base_url.rstrip("/")
    if urlsplit(base).hostname != "127.0.0.1":
        raise SystemExit("this load goes to 127.0.0.1 only")
    idle = Phase("idle")
    await _run_phase(base, idle, [("/healthz", {})] * 20, 1)
    size_before = await _database_size(args)

    views = Phase(f"{args.views} login-page views")
    await _run_phase(base, views, [("/login/canvas", {})] * args.views, args.parallel)
    query = {
        "client_id": args.client_id,
        "response_type": "code",
        "redirect_uri": args.redirect_uri,
        # The largest values the server takes, as the finding's load sent them.
        "state": "s" * args.field_chars,
        "purpose": "p" * args.field_chars,
        "nonce": "n" * args.field_chars,
        "scope": "x" * args.field_chars,
    }
    authorizations = Phase(f"{args.authorizations} /auth ({args.field_chars}-char fields)")
    await _run_phase(
        base, authorizations, [("/login/oauth2/auth", query)] * args.authorizations, args.parallel
    )
    logins = Phase(f"{args.failed_logins} failed logins at once")
    await _failed_logins(base, logins, args.failed_logins)
    size_after = await _database_size(args)

    for phase in (idle, views, authorizations, logins):
        print(phase.line())
    if size_before is not None and size_after is not None:
        print(
            f"database size: before {size_before:,} bytes, after {size_after:,} bytes "
            f"(+{size_after - size_before:,})"
        )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8765")
    parser.add_argument("--sqlite-file", help="the server's SQLite file, to print its size")
    parser.add_argument("--database-url", help="a PostgreSQL URL, to print pg_database_size")
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--redirect-uri", default=DEMO_REDIRECT_URI)
    parser.add_argument("--views", type=int, default=500)
    parser.add_argument("--authorizations", type=int, default=500)
    parser.add_argument("--failed-logins", type=int, default=20)
    parser.add_argument("--field-chars", type=int, default=4096)
    parser.add_argument("--parallel", type=int, default=16)
    args = parser.parse_args(argv)
    for name in ("views", "authorizations", "failed_logins", "parallel"):
        if not 0 < getattr(args, name) <= 1000:
            parser.error(f"--{name.replace('_', '-')} must be 1 to 1000")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
