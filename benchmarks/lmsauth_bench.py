"""lmsauth's scenarios, on SQLite and on PostgreSQL, served by ``lmsauth serve`` on one core.

Order per backend: fresh database; CLI objects; 1,000 live tokens (and sessions); the read
scenarios (2, 3) and their half-rate latency; the writing scenarios (1, 5, 4); the login form
(6) and the Access Tokens API list (7); scenario 1 again on servers whose identity tokens are
ES256 and EdDSA; scenarios 1 and 2 on a server of two worker processes; then the tables are
topped up to 1,000,000 rows and scenarios 2 and 3 are run again on a restarted server (so its
RSS starts from scratch in both cases).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks import commons_data, data, procs
from benchmarks.load import BenchError, Request, Result, Settings, at_rate, count_run, measure
from lmsauth.canvas.models import AccessToken

PORT = data.PORT
BASE = data.BASE_URL
SECRET_KEY = "benchmark-secret-key-not-for-production-0123456789"
PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
# Another name lets two checkouts benchmark on one PostgreSQL server without dropping each
# other's database.
PG_DB = os.environ.get("LMSAUTH_BENCH_PG_DB", "lmsauth_bench")


@dataclass
class Plan:
    """Sizes of one run (the full run, or --quick for CI)."""

    live_small: int = 1_000
    live_large: int = 1_000_000
    sample_large: int = 20_000  # tokens of the large table presented in turn
    rss_first: int = 10_000
    rss_total: int = 1_000_000
    rss_seconds: float = 1500.0  # wall-clock bound of the RSS run (it reports what it reached)
    codes_per_second: int = 6_000  # upper bound of scenario 4's rate, to size the code list
    half_rate: bool = True
    breakdown_calls: int = 1000
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    scale: bool = True
    # scenario 1 again with each of these identity signing algorithms (RS256 is scenario 1)
    identity_algs: tuple[str, ...] = ("ES256", "EdDSA")
    workers: int = 2  # scenarios 1 and 2 again on `lmsauth serve --workers N` (1: not run)
    limit_grants: int = 2_000  # grants of each kind replayed on the raw driver (scenarios 4, 5)
    manual_tokens: int = 10  # the bench user's manual tokens, listed by scenario 7 (a page is 10)


@dataclass
class Backend:
    name: str
    url: str
    data_dir: Path
    sqlite_path: Path | None

    @property
    def short(self) -> str:
        return "sqlite" if self.sqlite_path is not None else "pg"


@dataclass
class Outcome:
    results: dict[str, Result] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def backend(name: str, work: Path) -> Backend:
    folder = work / f"lmsauth-{name}"
    if name == "sqlite":
        return Backend(name, f"sqlite+aiosqlite:///{folder / 'lmsauth.db'}", folder, folder / "lmsauth.db")
    return Backend(name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}", folder, None)


def server_env(b: Backend) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSAUTH_")}
    env.update(
        LMSAUTH_DATA_DIR=str(b.data_dir),
        LMSAUTH_DATABASE_URL=b.url,
        LMSAUTH_SECRET_KEY=SECRET_KEY,
        LMSAUTH_PUBLIC_URL=BASE,
        # uvicorn's access log is off at "warning", as for the peers (--no-access-log)
        LMSAUTH_LOG_LEVEL="warning",
        # Rate limits stay on, so their cost is measured; but scenarios 1, 4 and 5 present one
        # client id, and 3 a thousand sessions, thousands of times a second for minutes: these
        # two limits are raised out of reach. The API's bucket per token is left at its default
        # (the thousand tokens share the load, far below it).
        LMSAUTH_RATE_LIMIT_CLIENT_REQUESTS="1000000000",
        LMSAUTH_RATE_LIMIT_SESSION_REQUESTS="1000000000",
        # Scenario 6 signs one person in from one address, 32 at a time: the login throttle
        # counts every attempt before its password is checked, so its thresholds are raised too.
        LMSAUTH_RATE_LIMIT_LOGIN_DELAY_AFTER="1000000000",
        LMSAUTH_RATE_LIMIT_LOGIN_LOCK_AFTER="1000000000",
        LMSAUTH_RATE_LIMIT_LOGIN_IP_DELAY_AFTER="1000000000",
        LMSAUTH_RATE_LIMIT_LOGIN_IP_LOCK_AFTER="1000000000",
    )
    if os.environ.get("LMSAUTH_BENCH_SRC"):
        # --src: serve another copy of the source tree (before/after comparisons of a change)
        env["PYTHONPATH"] = os.environ["LMSAUTH_BENCH_SRC"]
    return env


def reset(b: Backend) -> None:
    if b.data_dir.exists():
        shutil.rmtree(b.data_dir)
    b.data_dir.mkdir(parents=True)
    if b.sqlite_path is None:
        data.recreate_pg_database(PG_ADMIN_URL, PG_DB)


def start_server(
    b: Backend,
    cfg: Settings,
    raw: Path,
    tag: str,
    *,
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> procs.Server:
    """``lmsauth serve`` on the server core; with ``workers`` > 1, on the server core and wrk's
    (whose load generator then competes with a worker for its core)."""
    cpu: int | str = cfg.server_cpu
    if workers > 1 and cfg.client_cpu != cfg.server_cpu:
        cpu = f"{cfg.server_cpu},{cfg.client_cpu}"
    server = procs.start(
        f"lmsauth-{b.short}-{tag}",
        [
            str(data.ROOT / ".venv" / "bin" / "lmsauth"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(PORT),
            "--workers",
            str(workers),
        ],
        cwd=data.ROOT,
        env={**server_env(b), **(env or {})},
        log_dir=raw,
        cpu=cpu,
    )
    procs.wait_http(f"{BASE}/login/oauth2/jwks", server)
    return server


def run_backend(
    b: Backend, plan: Plan, cfg: Settings, work: Path, raw: Path, out: Outcome, want: Callable[[str], bool]
) -> None:
    log = print
    s = b.short
    values = work / "values" / s
    log(f"== lmsauth on {b.name}")
    reset(b)
    env = server_env(b)
    canvas = data.make_canvas(env)
    watch_db = b.sqlite_path is None

    identity: dict[str, Any] | None = None
    if data.cli_has(env, "identity-client", "create"):
        identity = data.cli(
            env, "identity-client", "create", "--name", "bench", "--principal", "bench-institution", "--json"
        )
    else:
        out.skipped[f"s1-{s}"] = "the Identity Service (lmsauth identity-client) is not in this tree yet"

    commons = commons_data.available(env)
    if commons is not None:
        out.skipped[f"s3-{s}"] = commons

    # ---- 1,000 live tokens (and sessions)
    base_tokens = data.count_rows(b.url, AccessToken.__table__)
    before = data.stored_bytes(b.url, "access_tokens", b.sqlite_path)
    api_tokens = data.timed(
        f"{plan.live_small} access tokens",
        data.insert_access_tokens,
        b.url,
        canvas,
        plan.live_small,
        plan.live_small,
    )
    after = data.stored_bytes(b.url, "access_tokens", b.sqlite_path)
    out.facts[f"token_bytes_small_{s}"] = (after - before) / plan.live_small
    sessions: commons_data.Sessions | None = None
    if commons is None:
        sessions = data.timed(
            f"{plan.live_small} commons sessions",
            commons_data.make_sessions,
            b,
            env,
            plan.live_small,
            plan.live_small,
        )
    out.facts[f"tokens_before_{s}"] = base_tokens

    s1 = Request(
        f"{BASE}/ids/auth/login",
        method="POST",
        body="grant_type=client_credentials",
        auth=f"{identity['client_id']}:{identity['client_secret']}" if identity else "",
    )
    server = start_server(b, cfg, raw, "small")
    try:
        token_file = data.write_values(values / "api_tokens.txt", [a for a, _ in api_tokens])
        s2 = Request(f"{BASE}/api/v1/users/self", header="Authorization: Bearer {T}", values=token_file)
        if want(f"s2-{s}"):
            out.results[f"s2-{s}"] = measure(
                f"s2-{s}", server, cfg, raw, lambda rep: s2, expect_text='"id":', watch_db=watch_db
            )
        s3: Request | None = None
        if sessions is not None:
            s3_req = s3 = sessions.request(values / "sessions.txt")
            if want(f"s3-{s}"):
                out.results[f"s3-{s}"] = measure(
                    f"s3-{s}",
                    server,
                    cfg,
                    raw,
                    lambda rep: s3_req,
                    expect_text=sessions.expect_text,
                    watch_db=watch_db,
                )
        if plan.half_rate:
            for name, req in ((f"s2-{s}", s2), (f"s3-{s}", s3)):
                if req is None or name not in out.results or not want(f"{name}-half"):
                    continue
                peak = out.results[name].median().rps
                out.results[f"{name}-half"] = at_rate(f"{name}-half", server, cfg, raw, req, peak / 2)

        if want(f"breakdown-{s}"):
            out.facts[f"breakdown_{s}"] = breakdown(b, cfg, token_file, plan.breakdown_calls)

        if identity is not None and want(f"s1-{s}"):
            out.results[f"s1-{s}"] = measure(
                f"s1-{s}",
                server,
                cfg,
                raw,
                lambda rep: s1,
                expect_text='"access_token":"eyJ',
                watch_db=watch_db,
            )

        if want(f"s5-{s}"):
            refresh_pool = data.insert_access_tokens(b.url, canvas, plan.live_small, plan.live_small)
            refresh_file = data.write_values(values / "refresh.txt", [r for _, r in refresh_pool])
            s5 = Request(
                f"{BASE}/login/oauth2/token",
                method="POST",
                body=(
                    f"grant_type=refresh_token&client_id={canvas.client_id}"
                    f"&client_secret={quote(canvas.client_secret, safe='')}&refresh_token={{T}}"
                ),
                values=refresh_file,
            )
            out.results[f"s5-{s}"] = measure(
                f"s5-{s}", server, cfg, raw, lambda rep: s5, expect_text='"access_token":"', watch_db=watch_db
            )
            if plan.half_rate and want(f"s5-{s}-half"):
                peak = out.results[f"s5-{s}"].median().rps
                out.results[f"s5-{s}-half"] = at_rate(f"s5-{s}-half", server, cfg, raw, s5, peak / 2)

        if want(f"s4-{s}"):
            # Size the code list from scenario 5 (the same endpoint, a lighter grant) when it
            # ran: 3x its rate is ample, and inserting unused codes would only cost time.
            rate = plan.codes_per_second
            if f"s5-{s}" in out.results:
                rate = min(rate, max(1000, int(3 * out.results[f"s5-{s}"].median().rps)))
            per_rep = int(rate * (cfg.warm + cfg.duration + 2)) + 2

            def s4(rep: int) -> Request:
                # fresh codes for every repetition: each lives 10 minutes and is single use
                codes = data.insert_codes(b.url, canvas, per_rep)
                return Request(
                    f"{BASE}/login/oauth2/token",
                    method="POST",
                    body=(
                        f"grant_type=authorization_code&client_id={canvas.client_id}"
                        f"&client_secret={quote(canvas.client_secret, safe='')}"
                        f"&redirect_uri={quote(data.REDIRECT_URI, safe='')}&code={{T}}"
                    ),
                    values=data.write_values(values / f"codes.{rep}.txt", codes),
                    cycle=False,
                )

            out.results[f"s4-{s}"] = measure(
                f"s4-{s}", server, cfg, raw, s4, expect_text='"refresh_token":"', watch_db=watch_db
            )
            if plan.half_rate and want(f"s4-{s}-half"):
                peak = out.results[f"s4-{s}"].median().rps
                # fresh codes for the probe and for the measured run
                out.results[f"s4-{s}-half"] = at_rate(
                    f"s4-{s}-half", server, cfg, raw, lambda run: s4(cfg.reps + run), peak / 2
                )

        if want(f"s6-{s}"):
            s6 = login_form_request()
            out.results[f"s6-{s}"] = measure(
                f"s6-{s}", server, cfg, raw, lambda rep: s6, expect_text="", watch_db=watch_db
            )
            out.facts["argon2"] = argon2_parameters()

        if want(f"s7-{s}"):
            make_manual_tokens(api_tokens[0][0], plan.manual_tokens)
            s7 = Request(
                f"{BASE}/api/v1/users/self/user_generated_tokens",
                header="Authorization: Bearer {T}",
                values=token_file,
            )
            out.results[f"s7-{s}"] = measure(
                f"s7-{s}", server, cfg, raw, lambda rep: s7, expect_text='"purpose":', watch_db=watch_db
            )
    finally:
        procs.stop(server)

    if b.sqlite_path is not None and want(f"limit-{s}"):
        out.facts[f"write_limit_{s}"] = write_limit(b, cfg, canvas, plan.limit_grants)

    s1_alg: Request | None = s1 if identity is not None else None
    for alg in plan.identity_algs:
        name = f"s1-{s}-{alg.lower()}"
        if s1_alg is None or not want(name):
            continue
        alg_server = start_server(b, cfg, raw, alg.lower(), env={"LMSAUTH_IDENTITY_SIGNING_ALG": alg})
        try:
            out.results[name] = measure(
                name,
                alg_server,
                cfg,
                raw,
                lambda rep: s1_alg,
                expect_text='"access_token":"eyJ',
                watch_db=watch_db,
            )
        finally:
            procs.stop(alg_server)

    w = plan.workers
    if w > 1 and (want(f"s1-{s}-w{w}") or want(f"s2-{s}-w{w}")):
        # Two processes share the server core and wrk's: the load generator is contended.
        multi = start_server(b, cfg, raw, f"w{w}", workers=w)
        try:
            if want(f"s2-{s}-w{w}"):
                out.results[f"s2-{s}-w{w}"] = measure(
                    f"s2-{s}-w{w}", multi, cfg, raw, lambda rep: s2, expect_text='"id":', watch_db=watch_db
                )
            if s1_alg is not None and want(f"s1-{s}-w{w}"):
                out.results[f"s1-{s}-w{w}"] = measure(
                    f"s1-{s}-w{w}",
                    multi,
                    cfg,
                    raw,
                    lambda rep: s1_alg,
                    expect_text='"access_token":"eyJ',
                    watch_db=watch_db,
                )
        finally:
            procs.stop(multi)

    if not plan.scale:
        return
    # ---- top up to 1,000,000 live tokens (and sessions), then the read scenarios again
    have = data.count_rows(b.url, AccessToken.__table__)
    top_up = max(0, plan.live_large - have)
    before = data.stored_bytes(b.url, "access_tokens", b.sqlite_path)
    big_tokens = data.timed(
        f"top up to {plan.live_large} access tokens (+{top_up})",
        data.insert_access_tokens,
        b.url,
        canvas,
        top_up,
        plan.sample_large,
    )
    after = data.stored_bytes(b.url, "access_tokens", b.sqlite_path)
    out.facts[f"token_bytes_large_{s}"] = (after - before) / max(top_up, 1)
    out.facts[f"tokens_large_{s}"] = data.count_rows(b.url, AccessToken.__table__)
    big_sessions: commons_data.Sessions | None = None
    if sessions is not None:
        big_sessions = data.timed(
            f"top up to {plan.live_large} commons sessions",
            commons_data.make_sessions,
            b,
            env,
            plan.live_large - plan.live_small,
            plan.sample_large,
            facts=out.facts,
            fact_key=f"session_bytes_{s}",
        )
    server = start_server(b, cfg, raw, "large")
    try:
        # tokens from across the whole table (the small run's thousand if nothing was added)
        presented = [a for a, _ in big_tokens] or [a for a, _ in api_tokens]
        token_file = data.write_values(values / "api_tokens_large.txt", presented)
        s2 = Request(f"{BASE}/api/v1/users/self", header="Authorization: Bearer {T}", values=token_file)
        if want(f"s2-{s}"):
            out.results[f"s2-{s}-1m"] = measure(
                f"s2-{s}-1m", server, cfg, raw, lambda rep: s2, expect_text='"id":', watch_db=watch_db
            )
        if big_sessions is not None and want(f"s3-{s}"):
            s3 = big_sessions.request(values / "sessions_large.txt")
            out.results[f"s3-{s}-1m"] = measure(
                f"s3-{s}-1m",
                server,
                cfg,
                raw,
                lambda rep: s3,
                expect_text=big_sessions.expect_text,
                watch_db=watch_db,
            )
    finally:
        procs.stop(server)


def write_limit(b: Backend, cfg: Settings, canvas: data.Canvas, grants: int) -> dict[str, Any]:
    """Scenarios 4 and 5's statements replayed on ``sqlite3`` (``benchmarks/write_limit.py``)."""
    assert b.sqlite_path is not None
    done = subprocess.run(
        [
            "taskset",
            "-c",
            str(cfg.server_cpu),
            str(data.ROOT / ".venv" / "bin" / "python"),
            "-m",
            "benchmarks.write_limit",
            str(b.sqlite_path),
            canvas.client_id,
            canvas.client_secret,
            str(canvas.user_id),
            str(canvas.key_id),
            str(grants),
        ],
        cwd=data.ROOT,
        env=server_env(b),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"write limit failed: {done.stderr[-800:]}")
    print(done.stderr, end="", flush=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def login_form_request() -> Request:
    """Scenario 6: the bench user's sign-in as a browser posts it, with the login state cookie
    and its CSRF token from one ``GET /login/canvas`` (the cookie is sealed state, valid for an
    hour, so every request may present it). Each request checks the password with argon2id,
    makes a browser session and answers 302 to the home page."""
    with urllib.request.urlopen(f"{BASE}/login/canvas", timeout=30) as response:
        page = response.read().decode()
        cookies = response.headers.get_all("Set-Cookie") or []
    cookie = next(c.split(";", 1)[0] for c in cookies if c.startswith("canvas_login="))
    found = re.search(r'name="authenticity_token" value="([^"]+)"', page)
    if found is None:
        raise BenchError("no authenticity_token in the login form")
    body = (
        f"authenticity_token={quote(found.group(1), safe='')}"
        f"&pseudonym_session%5Bunique_id%5D={quote(data.BENCH_LOGIN, safe='')}"
        f"&pseudonym_session%5Bpassword%5D={quote(data.BENCH_PASSWORD, safe='')}"
    )
    return Request(f"{BASE}/login/canvas", method="POST", body=body, header=f"Cookie: {cookie}", expect=302)


def make_manual_tokens(bearer: str, n: int) -> None:
    """``n`` manual tokens of the bench user, made as a person makes them (the API's POST)."""
    for i in range(n):
        request = urllib.request.Request(
            f"{BASE}/api/v1/users/self/tokens",
            data=f"token%5Bpurpose%5D=bench+manual+{i}".encode(),
            headers={"Authorization": f"Bearer {bearer}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def argon2_parameters() -> dict[str, Any]:
    """The argon2id parameters the server hashes with (``core.secrets``, argon2-cffi's defaults)."""
    from lmsauth.core import secrets

    hasher = secrets._hasher
    return {
        "type": hasher.type.name,
        "time_cost": hasher.time_cost,
        "memory_cost_kib": hasher.memory_cost,
        "parallelism": hasher.parallelism,
        "hash_len": hasher.hash_len,
        # password_hash_slots() of a server pinned to one core: one hash at a time
        "hashes_at_once": 1,
    }


def breakdown(b: Backend, cfg: Settings, token_file: Path, calls: int) -> dict[str, Any]:
    """Scenario 2's pieces, in-process on the server core (``benchmarks/breakdown.py``)."""
    done = subprocess.run(
        [
            "taskset",
            "-c",
            str(cfg.server_cpu),
            str(data.ROOT / ".venv" / "bin" / "python"),
            "-m",
            "benchmarks.breakdown",
            b.url,
            str(token_file),
            str(calls),
        ],
        cwd=data.ROOT,
        env=server_env(b),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"breakdown failed: {done.stderr[-800:]}")
    print(done.stderr, end="", flush=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rss_growth(b: Backend, plan: Plan, cfg: Settings, work: Path, raw: Path, out: Outcome) -> None:
    """RSS after ``rss_first`` requests against after ``rss_total`` (scenario 2, same server)."""
    s = b.short
    token_file = work / "values" / s / "api_tokens_large.txt"
    if not token_file.exists():
        token_file = work / "values" / s / "api_tokens.txt"
    req = Request(f"{BASE}/api/v1/users/self", header="Authorization: Bearer {T}", values=token_file)
    server = start_server(b, cfg, raw, "rss")
    try:
        first = count_run(f"rss-{s}-first", server, cfg, raw, req, plan.rss_first, plan.rss_seconds)
        rss_first = procs.rss_kib(server.pids())
        left = max(10.0, plan.rss_seconds - first.duration_s)
        rest = count_run(f"rss-{s}-rest", server, cfg, raw, req, plan.rss_total - first.requests, left)
        rss_last = procs.rss_kib(server.pids())
    finally:
        procs.stop(server)
    errors = first.errors + rest.errors
    if errors:
        raise BenchError(f"rss run had {errors} errors: {first.first_bad or rest.first_bad}")
    out.facts[f"rss_{s}"] = {
        "requests_first": first.requests,
        "requests_total": first.requests + rest.requests,
        "requests_planned": plan.rss_total,
        "seconds_bound": plan.rss_seconds,
        "rss_first_mib": round(rss_first / 1024, 1),
        "rss_last_mib": round(rss_last / 1024, 1),
        "growth": round(rss_last / rss_first - 1, 4),
        "errors": errors,
        "rps_rest": round(rest.rps, 1),
    }
    print(f"  rss {s}: {out.facts[f'rss_{s}']}", flush=True)
