"""The "limit" of scenarios 4 and 5 on SQLite: the very statements lmsauth's token endpoint runs
for each grant, replayed on the raw driver (``sqlite3``) with nothing else around them: no
HTTP, no framework, no ORM, no event loop, no driver thread.

    python -m benchmarks.write_limit SQLITE_FILE CLIENT_ID CLIENT_SECRET USER_ID KEY_ID N

1. Two identical copies of the benchmark's database (``VACUUM INTO``), with ``N`` fresh codes and
   ``N`` refresh tokens added to both.
2. The app runs in this process on the first copy (Starlette's TestClient, lifespan included)
   and redeems each code, then each refresh token, once, while every statement that any
   ``sqlite3`` connection executes is recorded with its parameters, and every commit and
   rollback (a ``sqlite3.Connection`` subclass that all connections are opened with).
3. The recorded statements of each scenario are executed again, in order and with the same
   parameters, on the second copy, one ``sqlite3`` connection for each the app used, with the
   app's pragmas, on the core this process is pinned to. Their CPU time per grant is the limit: what the same
   storage work costs with nothing of lmsauth's around it.

Prints one JSON line: per scenario, the grants, statements per grant and the CPU and wall
microseconds per grant of the replay (``rps`` = grants per CPU second).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks import data

Statement = tuple[int, str, Any]  # (which connection, SQL, parameters)
_trace: list[Statement] = []
_recording = False


class _TracedCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if _recording:
            _trace.append((id(self.connection), sql, parameters))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> sqlite3.Cursor:
        if _recording:
            seq = list(seq)
            _trace.extend((id(self.connection), sql, parameters) for parameters in seq)
        return super().executemany(sql, seq)


class _TracedConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _TracedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def commit(self) -> None:
        if _recording and self.in_transaction:
            _trace.append((id(self), "COMMIT", ()))
        super().commit()

    def rollback(self) -> None:
        if _recording and self.in_transaction:
            _trace.append((id(self), "ROLLBACK", ()))
        super().rollback()


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as connection:
        connection.execute("VACUUM INTO ?", (str(target),))
    connection.close()


def _replay(path: Path, statements: list[Statement]) -> tuple[float, float]:
    """Each recorded connection gets its own (the app's pooled writer and readers, and
    ``fastread``'s), so transactions interleave as they did; opened before the clock starts."""
    connections: dict[int, sqlite3.Connection] = {}
    for which in dict.fromkeys(which for which, _, _ in statements):
        connection = connections[which] = sqlite3.connect(path, isolation_level=None, cached_statements=256)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=10000", "synchronous=NORMAL"):
            connection.execute(f"PRAGMA {pragma}")
    cpu, wall = time.process_time(), time.perf_counter()
    for which, sql, parameters in statements:
        connections[which].execute(sql, parameters).fetchall()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for connection in connections.values():
        connection.close()
    return cpu, wall


def measure(source: Path, canvas: data.Canvas, n: int) -> dict[str, Any]:
    global _recording
    from starlette.testclient import TestClient

    from lmsauth.app import create_app
    from lmsauth.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="lmsauth-write-limit-"))
    live, replay = folder / "live.db", folder / "replay.db"
    _copy(source, live)
    url = f"sqlite+aiosqlite:///{live}"
    codes = data.insert_codes(url, canvas, n)
    refresh = [r for _, r in data.insert_access_tokens(url, canvas, n, n)]
    _copy(live, replay)

    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs["factory"] = _TracedConnection
        return connect(*args, **kwargs)

    sqlite3.connect = traced_connect  # type: ignore[assignment]
    settings = Settings(
        data_dir=folder,
        database_url=url,
        secret_key=os.environ.get("LMSAUTH_SECRET_KEY", "write-limit-secret-key-0123456789-abcdef"),
        public_url=data.BASE_URL,
        rate_limits="off",
        metrics=False,
    )
    secret = quote(canvas.client_secret, safe="")
    bodies = {
        "s4": [
            f"grant_type=authorization_code&client_id={canvas.client_id}&client_secret={secret}"
            f"&redirect_uri={quote(data.REDIRECT_URI, safe='')}&code={code}"
            for code in codes
        ],
        "s5": [
            f"grant_type=refresh_token&client_id={canvas.client_id}&client_secret={secret}&refresh_token={r}"
            for r in refresh
        ],
    }
    recorded: dict[str, list[Statement]] = {}
    try:
        # Canvas alone: the DAP job worker's polls, on a connection of their own, would be
        # recorded between a grant's statements, and replayed in one thread they would wait
        # on each other's write lock (live, they wait in two threads).
        with TestClient(create_app(settings, services=["canvas"]), base_url=data.BASE_URL) as client:
            for name, scenario in bodies.items():
                _trace.clear()
                _recording = True
                for body in scenario:
                    answer = client.post(
                        "/login/oauth2/token",
                        content=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {answer.status_code}: {answer.text[:300]}")
                _recording = False
                recorded[name] = list(_trace)
    finally:
        _recording = False
        sqlite3.connect = connect  # type: ignore[assignment]
    out: dict[str, Any] = {}
    for name, statements in recorded.items():
        cpu, wall = _replay(replay, statements)
        out[name] = {
            "grants": n,
            "statements_per_grant": round(len(statements) / n, 2),
            "cpu_us": round(cpu * 1e6 / n, 1),
            "wall_us": round(wall * 1e6 / n, 1),
            "rps": round(n / cpu, 1) if cpu else None,
        }
        print(f"  limit {name}: {out[name]}", file=sys.stderr, flush=True)
    return out


def main(argv: list[str]) -> int:
    path, client_id, client_secret, user_id, key_id, n = argv
    canvas = data.Canvas(int(user_id), int(key_id), client_id, client_secret)
    print(json.dumps(measure(Path(path), canvas, int(n))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
