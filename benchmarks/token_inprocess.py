"""Scenarios 4 and 5 in-process: the whole app called with ASGI messages, no HTTP, no load
generator, so the CPU per request is lmsauth's alone (a steadier A/B on a shared machine).

    taskset -c 0 .venv/bin/python -m benchmarks.token_inprocess sqlite|postgresql [CALLS] [ROUNDS]
        [--rows N] [--concurrency C]

Makes a fresh database as the benchmark does (``lmsauth_bench.reset``, the CLI's key and
user), then for each scenario runs ROUNDS rounds of CALLS token requests and prints (JSON) the
fastest round's CPU microseconds per request. Serve another source tree with
``PYTHONPATH=that/src``. By default the requests run one after another on a small database;
a full run's server meets them 32 at a time on a database that has grown by hundreds of
thousands of rows, and each costs it more (``ANALYSIS.md``): ``--rows N`` first adds N
tokens and N codes, ``--concurrency C`` keeps C requests under way at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks import data, lmsauth_bench

HERE = Path(__file__).resolve().parent


async def _call(app: Any, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/login/oauth2/token",
        "raw_path": b"/login/oauth2/token",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", data.PORT),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def client_requests(app: Any, waiting: Iterator[bytes]) -> None:
    """One connection's requests, one after another, until the round's are all taken."""
    for body in waiting:
        await asyncio.sleep(0)  # a server's loop turns between requests: let its tasks run
        status, answer = await _call(app, body)
        if status != 200:
            raise RuntimeError(f"{status}: {answer[:300]!r}")


async def _rounds(app: Any, bodies: list[list[bytes]], concurrency: int = 1) -> float:
    best = float("inf")
    for round_bodies in bodies:
        waiting = iter(round_bodies)
        started = time.process_time()
        await asyncio.gather(*(client_requests(app, waiting) for _ in range(concurrency)))
        best = min(best, (time.process_time() - started) / len(round_bodies))
    return round(best * 1e6, 1)


async def measure(
    canvas: data.Canvas, refresh: list[str], codes: list[list[str]], concurrency: int = 1
) -> dict[str, float]:
    from lmsauth.app import create_app
    from lmsauth.settings import Settings

    rounds = len(codes)
    secret = quote(canvas.client_secret, safe="")
    auth = f"client_id={canvas.client_id}&client_secret={secret}"
    redirect = quote(data.REDIRECT_URI, safe="")
    app = create_app(Settings())
    out: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        out["s5_refresh_us"] = await _rounds(
            app,
            [[f"grant_type=refresh_token&{auth}&refresh_token={t}".encode() for t in refresh]] * rounds,
            concurrency,
        )
        code_grant = f"grant_type=authorization_code&{auth}&redirect_uri={redirect}"
        bodies = [[f"{code_grant}&code={c}".encode() for c in cs] for cs in codes]
        out["s4_code_us"] = await _rounds(app, bodies, concurrency)
    return out


def prepare(backend_name: str, folder: str, rows: int) -> tuple[lmsauth_bench.Backend, data.Canvas]:
    """A fresh database as the benchmark makes it (the CLI's key and user), this process's
    environment the server's, and ``rows`` tokens and codes added first."""
    b = lmsauth_bench.backend(backend_name, HERE / ".work" / folder)
    lmsauth_bench.reset(b)
    env = lmsauth_bench.server_env(b)
    canvas = data.make_canvas(env)
    os.environ.update(env)
    if rows:
        data.insert_access_tokens(b.url, canvas, rows, 0)
        data.insert_codes(b.url, canvas, rows)
    return b, canvas


def main(backend_name: str, calls: int, rounds: int, rows: int = 0, concurrency: int = 1) -> dict[str, float]:
    b, canvas = prepare(backend_name, "inprocess", rows)
    refresh = [r for _, r in data.insert_access_tokens(b.url, canvas, calls, calls)]
    codes = [data.insert_codes(b.url, canvas, calls) for _ in range(rounds)]
    return asyncio.run(measure(canvas, refresh, codes, concurrency))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m benchmarks.token_inprocess")
    ap.add_argument("backend", choices=["sqlite", "postgresql"])
    ap.add_argument("calls", type=int, nargs="?", default=500)
    ap.add_argument("rounds", type=int, nargs="?", default=5)
    ap.add_argument("--rows", type=int, default=0, help="tokens and codes added first")
    ap.add_argument("--concurrency", type=int, default=1, help="requests under way at once")
    args = ap.parse_args()
    shape = {"backend": args.backend, "calls": args.calls, "rounds": args.rounds}
    shape |= {"rows": args.rows, "concurrency": args.concurrency}
    print(json.dumps({**shape, **main(args.backend, args.calls, args.rounds, args.rows, args.concurrency)}))
