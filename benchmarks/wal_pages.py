"""The pages a code exchange and a refresh write on SQLite, by table and index.

    .venv/bin/python -m benchmarks.wal_pages [GRANTS] [--rows N]

On SQLite every page a transaction changes is appended whole (4 KiB) to the WAL at its commit
and copied back by the next checkpoint, so these pages are most of a grant's file I/O: the
``pwrite`` and ``fdatasync`` calls ``perf`` finds in the kernel's share of scenario 4. Makes a
database as ``token_inprocess`` does (``--rows`` adds N tokens and N codes first, as a full run's
database has grown), runs GRANTS exchanges of fresh codes and then GRANTS refreshes through the
app, each with no checkpoint in between (stamping of the change log included: the server does
it too), and reads the WAL's frame headers: each frame names its
page, and SQLite's ``dbstat`` table names the table or index that owns it. Written by hand:
SQLite has no statement that lists a WAL's pages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import struct
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from benchmarks import data
from benchmarks.token_inprocess import client_requests, prepare

WAL_HEADER = 32
FRAME_HEADER = 24


def wal_pages(path: str, page_size: int) -> list[int]:
    """The page number of every frame in the WAL file ``path``."""
    raw = Path(path).read_bytes()
    pages = []
    for offset in range(WAL_HEADER, len(raw) - FRAME_HEADER - page_size + 1, FRAME_HEADER + page_size):
        (page,) = struct.unpack(">I", raw[offset : offset + 4])
        pages.append(page)
    return pages


def owners(database: str) -> dict[int, str]:
    """Each page's table or index; an index SQLite made for a UNIQUE constraint is named with
    its columns (``sqlite_autoindex_access_tokens_1(token_digest)``)."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        names = {}
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_schema WHERE name LIKE 'sqlite_autoindex%'"
        ):
            columns = ",".join(row[2] for row in connection.execute(f"PRAGMA index_info('{name}')"))
            names[name] = f"{name}({columns})"
        pages = connection.execute("SELECT name, pageno FROM dbstat")
        return {page: names.get(name, name) for name, page in pages}


def checkpoint(database: str) -> None:
    """Copy the WAL back and empty it, so that the next grants' frames are all there is."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise RuntimeError("the WAL could not be emptied")


async def run(database: str, canvas: data.Canvas, codes: list[str], refresh: list[str]) -> dict[str, object]:
    from lmsauth.app import create_app
    from lmsauth.settings import Settings

    auth = f"client_id={canvas.client_id}&client_secret={quote(canvas.client_secret, safe='')}"
    redirect = quote(data.REDIRECT_URI, safe="")
    scenarios = {
        "s4_code": [
            f"grant_type=authorization_code&{auth}&redirect_uri={redirect}&code={c}".encode() for c in codes
        ],
        "s5_refresh": [f"grant_type=refresh_token&{auth}&refresh_token={t}".encode() for t in refresh],
    }
    app = create_app(Settings())
    out: dict[str, object] = {}
    async with app.router.lifespan_context(app):
        with contextlib.closing(sqlite3.connect(database)) as connection:
            (page_size,) = connection.execute("PRAGMA page_size").fetchone()
        for name, bodies in scenarios.items():
            checkpoint(database)
            # A read transaction begun on the empty WAL holds its read lock 0: no checkpoint
            # (such as a connection's automatic one after the change log's stamping) can copy
            # frames back or start the WAL over while the grants run.
            with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as pin:
                pin.execute("BEGIN")
                pin.execute("SELECT count(*) FROM sqlite_schema").fetchone()
                await client_requests(app, iter(bodies))
                pages = wal_pages(f"{database}-wal", page_size)
                pin.execute("COMMIT")
            named = owners(database)
            by_owner = Counter(named.get(page, "?") for page in pages)
            out[name] = {
                "pages_per_grant": round(len(pages) / len(bodies), 2),
                "by_table_or_index": {
                    owner: round(count / len(bodies), 2) for owner, count in by_owner.most_common()
                },
            }
    return out


def main(grants: int, rows: int) -> dict[str, object]:
    b, canvas = prepare("sqlite", "wal-pages", rows)
    refresh = [r for _, r in data.insert_access_tokens(b.url, canvas, grants, grants)]
    codes = data.insert_codes(b.url, canvas, grants)
    asyncio.run(stamp_backlog(b.url))
    return asyncio.run(run(str(b.sqlite_path), canvas, codes, refresh))


async def stamp_backlog(url: str) -> None:
    """Stamp the changes the bulk inserts captured, so that the grants' pages are not mixed
    with a catch-up of hundreds of thousands of rows (only their own changes' stamping)."""
    from lmsauth.canvas.changes import stamp_changes
    from lmsauth.core import clock
    from lmsauth.core.db import Database

    db = Database(url)
    try:
        async with db.session(write=True) as session:
            await stamp_changes(session, clock.now())
    finally:
        await db.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m benchmarks.wal_pages")
    ap.add_argument("grants", type=int, nargs="?", default=500)
    ap.add_argument("--rows", type=int, default=0, help="tokens and codes added first")
    args = ap.parse_args()
    print(json.dumps({"grants": args.grants, "rows": args.rows, **main(args.grants, args.rows)}, indent=2))
