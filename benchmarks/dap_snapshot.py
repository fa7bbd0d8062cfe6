"""The DAP scenario: snapshots of ``users`` and ``access_tokens`` at a million rows each.

    .venv/bin/python -m benchmarks.dap_snapshot                    # 1,000,000 rows, PostgreSQL
    .venv/bin/python -m benchmarks.dap_snapshot --rows 20000 --backend sqlite

It fills a fresh database (PostgreSQL ``COPY``, or SQLite ``executemany``; the change triggers
fire for every row, as they do for any writer), starts ``lmsauth serve`` on one core, and for
each table posts a TSV snapshot query (``mode: condensed``, what ``dap initdb`` asks for), waits
for the job, and downloads its objects: wall time, rows/s, and the server's peak RSS (sampled
every 0.2 s over the whole process tree) before and during the job. Then the real ``dap initdb``
builds both tables in a PostgreSQL copy from fresh snapshots, timed end to end. Prints a
Markdown section for ``benchmarks/RESULTS.md``; figures are not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.procs import RssSampler, free_port, rss_kib, start, stop, tree_pids, wait_http

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
PG = "postgresql://postgres@127.0.0.1:5432"


def _admin(sql: str) -> None:
    async def work() -> None:
        connection = await asyncpg.connect(f"{PG}/test")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(work())


def _env(data_dir: Path, database_url: str | None, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LMSAUTH_", "DAP_"))}
    env.update(
        LMSAUTH_DATA_DIR=str(data_dir),
        LMSAUTH_SECRET_KEY="bench-secret-key-0123456789-0123456789",
        LMSAUTH_PUBLIC_URL=f"http://127.0.0.1:{port}",
        LMSAUTH_LOG_LEVEL="warning",
        LMSAUTH_DAP_JOB_POLL_SECONDS="0.5",
    )
    if database_url:
        env["LMSAUTH_DATABASE_URL"] = database_url
    return env


def _lmsauth(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "lmsauth"), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


async def _fill_postgresql(url: str, rows: int) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        await connection.execute(
            "INSERT INTO accounts (id, name, uuid, lti_context_id, created_at) "
            "VALUES (1, 'Bench', 'acct', 'acct', $1)",
            now,
        )
        await connection.execute(
            "INSERT INTO developer_keys (id, name, account_id, secret_digest, redirect_uris, scopes, "
            "require_scopes, trusted, client_type, workflow_state, binding_state, auto_expire_tokens, "
            "visible, "
            "internal_service, is_default, created_at, updated_at) VALUES (1, 'Bench', 1, 'x', '[]', '[]', "
            "false, false, 'confidential', 'active', 'on', false, true, false, false, $1, $1)",
            now,
        )
        step = 100_000
        for start_id in range(1, rows + 1, step):
            ids = range(start_id, min(start_id + step, rows + 1))
            await connection.copy_records_to_table(
                "users",
                records=[
                    (i, f"User {i}", f"{i}, User", f"User {i}", False, f"u{i:036d}", "registered", now, now)
                    for i in ids
                ],
                columns=[
                    "id",
                    "name",
                    "sortable_name",
                    "short_name",
                    "is_admin",
                    "uuid",
                    "workflow_state",
                    "created_at",
                    "updated_at",
                ],
            )
            await connection.copy_records_to_table(
                "access_tokens",
                records=[
                    (
                        i,
                        i,
                        1,
                        f"{i:064x}",
                        "abcde",
                        '["url:GET|/api/v1/users/:id"]',
                        "bench",
                        False,
                        "active",
                        now,
                        now,
                    )
                    for i in ids
                ],
                columns=[
                    "id",
                    "user_id",
                    "developer_key_id",
                    "token_digest",
                    "token_hint",
                    "scopes",
                    "purpose",
                    "remember_access",
                    "workflow_state",
                    "created_at",
                    "updated_at",
                ],
            )
        for table in ("users", "access_tokens", "accounts", "developer_keys"):
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def _fill_sqlite(path: Path, rows: int) -> None:
    import sqlite3

    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    connection = sqlite3.connect(path)
    try:
        connection.execute(
            "INSERT INTO accounts (id, name, uuid, lti_context_id, created_at) "
            "VALUES (1, 'Bench', 'acct', 'acct', ?)",
            (now,),
        )
        connection.execute(
            "INSERT INTO developer_keys (id, name, account_id, secret_digest, redirect_uris, scopes, "
            "require_scopes, "
            "trusted, client_type, workflow_state, binding_state, auto_expire_tokens, visible, "
            "internal_service, "
            "is_default, created_at, updated_at) "
            "VALUES (1, 'Bench', 1, 'x', '[]', '[]', 0, 0, 'confidential', "
            "'active', 'on', 0, 1, 0, 0, ?, ?)",
            (now, now),
        )
        connection.executemany(
            "INSERT INTO users (id, name, sortable_name, short_name, is_admin, uuid, workflow_state, "
            "created_at, "
            "updated_at) VALUES (?, ?, ?, ?, 0, ?, 'registered', ?, ?)",
            ((i, f"User {i}", f"{i}, User", f"User {i}", f"u{i:036d}", now, now) for i in range(1, rows + 1)),
        )
        connection.executemany(
            "INSERT INTO access_tokens (id, user_id, developer_key_id, token_digest, token_hint, scopes, "
            "purpose, "
            "remember_access, workflow_state, created_at, updated_at) "
            "VALUES (?, ?, 1, ?, 'abcde', ?, 'bench', 0, "
            "'active', ?, ?)",
            ((i, i, f"{i:064x}", '["url:GET|/api/v1/users/:id"]', now, now) for i in range(1, rows + 1)),
        )
        connection.commit()
    finally:
        connection.close()


async def _stamp(url: str) -> None:
    """Stamp the bulk load's changes once, as the server's first stamping would (a long
    transaction: the load wrote two million change rows at once)."""
    from lmsauth.canvas.changes import stamp_changes
    from lmsauth.core import clock
    from lmsauth.core.db import Database

    db = Database(url, timeout=3600)
    try:
        async with db.session(write=True) as session:
            await stamp_changes(session, clock.now())
    finally:
        await db.dispose()


def _call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


def _snapshot(base: str, token: str, table: str) -> dict[str, Any]:
    started = time.monotonic()
    _, job = _call(
        "POST", f"{base}/dap/query/canvas/table/{table}/data", token, {"format": "tsv", "mode": "condensed"}
    )
    while job["status"] in ("waiting", "running"):
        time.sleep(0.2)
        _, job = _call("GET", f"{base}/dap/job/{job['id']}", token)
    job_seconds = time.monotonic() - started
    assert job["status"] == "complete", job
    rows, size = 0, 0
    for item in job["objects"]:
        _, urls = _call("POST", f"{base}/dap/object/url", token, [{"id": item["id"]}])
        with urllib.request.urlopen(urls["urls"][item["id"]]["url"], timeout=120) as response:
            raw = response.read()
        size += len(raw)
        rows += gzip.decompress(raw).count(b"\n") - 1  # the header
    return {
        "table": table,
        "job_seconds": job_seconds,
        "total_seconds": time.monotonic() - started,
        "rows": rows,
        "objects": len(job["objects"]),
        "gzip_bytes": size,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.dap_snapshot")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--work", type=Path, default=HERE / ".work" / "dap")
    ap.add_argument("--no-initdb", action="store_true", help="skip the real client's initdb")
    args = ap.parse_args(argv)

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    port = free_port()
    database_url = None
    if args.backend == "postgresql":
        _admin('DROP DATABASE IF EXISTS "lmsauth_bench_dap" WITH (FORCE)')
        _admin('CREATE DATABASE "lmsauth_bench_dap"')
        database_url = f"{PG.replace('postgresql', 'postgresql+asyncpg')}/lmsauth_bench_dap"
    env = _env(args.work, database_url, port)
    _lmsauth(env, "db", "upgrade")
    filled = time.monotonic()
    if database_url:
        asyncio.run(_fill_postgresql(database_url, args.rows))
    else:
        _fill_sqlite(args.work / "lmsauth.db", args.rows)
    stamped = time.monotonic()
    asyncio.run(_stamp(database_url or f"sqlite+aiosqlite:///{args.work / 'lmsauth.db'}"))
    stamp_seconds = time.monotonic() - stamped
    fill_seconds = time.monotonic() - filled
    print(
        f"filled {args.rows:,} rows per table in {fill_seconds:.0f} s (stamped in {stamp_seconds:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    client = json.loads(
        _lmsauth(env, "identity-client", "create", "--name", "Bench", "--principal", "bench", "--json")
    )

    server = start(
        "dap",
        [str(BIN / "lmsauth"), "serve", "--port", str(port)],
        cwd=args.work,
        env=env,
        log_dir=args.work,
        cpu=0,
    )
    base = f"http://127.0.0.1:{port}"
    results: list[dict[str, Any]] = []
    try:
        wait_http(f"{base}/readyz", server)
        time.sleep(2)
        idle_kib = rss_kib(tree_pids(server.pid))
        login = urllib.request.Request(
            f"{base}/ids/auth/login", b"grant_type=client_credentials", method="POST"
        )
        import base64

        login.add_header(
            "Authorization",
            "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode(),
        )
        with urllib.request.urlopen(login, timeout=30) as response:
            token = json.loads(response.read())["access_token"]
        for table in ("users", "access_tokens"):
            with RssSampler(server.pid) as sampler:
                result = _snapshot(base, token, table)
            result["peak_rss_mib"] = sampler.peak_kib / 1024
            results.append(result)
            print(f"{table}: {result}", file=sys.stderr, flush=True)
        initdb: dict[str, Any] = {}
        if not args.no_initdb:
            _admin('DROP DATABASE IF EXISTS "lmsauth_bench_dap_copy" WITH (FORCE)')
            _admin('CREATE DATABASE "lmsauth_bench_dap_copy"')
            dap_env = {k: v for k, v in os.environ.items() if not k.startswith("DAP_")}
            dap_env.update(
                DAP_TRACKING="false",
                DAP_CLIENT_ID=client["client_id"],
                DAP_CLIENT_SECRET=client["client_secret"],
            )
            (args.work / "dap-run").mkdir()
            with RssSampler(server.pid) as sampler:
                started = time.monotonic()
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "dap",
                        "--base-url",
                        base,
                        "--non-interactive",
                        "initdb",
                        "--connection-string",
                        f"{PG}/lmsauth_bench_dap_copy",
                        "--namespace",
                        "canvas",
                        "--table",
                        "users,access_tokens",
                    ],
                    env=dap_env,
                    cwd=args.work / "dap-run",
                    capture_output=True,
                    text=True,
                    check=False,
                )
                initdb["seconds"] = time.monotonic() - started
            initdb["ok"] = done.returncode == 0
            initdb["peak_rss_mib"] = sampler.peak_kib / 1024
            if not initdb["ok"]:
                print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)

            async def count() -> dict[str, int]:
                connection = await asyncpg.connect(f"{PG}/lmsauth_bench_dap_copy")
                try:
                    return {
                        t: await connection.fetchval(f'SELECT count(*) FROM canvas."{t}"')
                        for t in ("users", "access_tokens")
                    }
                finally:
                    await connection.close()

            initdb["rows"] = asyncio.run(count()) if initdb["ok"] else {}
    finally:
        stop(server)
        if args.backend == "postgresql":
            _admin('DROP DATABASE IF EXISTS "lmsauth_bench_dap" WITH (FORCE)')
        if not args.no_initdb:
            _admin('DROP DATABASE IF EXISTS "lmsauth_bench_dap_copy" WITH (FORCE)')

    lines = [
        f"Backend {args.backend}, {args.rows:,} rows per table "
        f"(filled in {fill_seconds:.0f} s with the change triggers on, of which stamping the "
        f"{2 * args.rows:,} changes {stamp_seconds:.0f} s), `lmsauth serve` on one core (`taskset -c 0`), "
        f"idle RSS {idle_kib / 1024:.0f} MiB, "
        f"{os.environ.get('LMSAUTH_DAP_ROWS_PER_OBJECT', '500000')} rows per object.",
        "",
        "| snapshot (tsv, condensed) | rows | objects | job wall time | rows/s | + download | gzip MiB "
        "| peak server RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['table']} | {r['rows']:,} | {r['objects']} | {r['job_seconds']:.1f} s | "
            f"{r['rows'] / r['job_seconds']:,.0f} | {r['total_seconds']:.1f} s | "
            f"{r['gzip_bytes'] / 2**20:.1f} | "
            f"{r['peak_rss_mib']:.0f} MiB |"
        )
    if initdb:
        lines += [
            "",
            f"Real `dap initdb --table users,access_tokens` (2.3.1, into PostgreSQL): "
            f"{'ok' if initdb['ok'] else 'FAILED'} in {initdb['seconds']:.0f} s, rows {initdb.get('rows')}, "
            f"peak server RSS {initdb['peak_rss_mib']:.0f} MiB.",
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
