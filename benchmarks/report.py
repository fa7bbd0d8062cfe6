"""Turn one run's ``results.json`` into RESULTS.md: every figure and every ratio from that run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCENARIOS = {
    "s1": "1. `POST /ids/auth/login` (client credentials → RS256 JWT)",
    "s2": "2. `GET /api/v1/users/self` with a Bearer token",
    "s3": "3. `GET /commons/api/sessions/{id}` with a session",
    "s4": "4. `POST /login/oauth2/token`, authorization code",
    "s5": "5. `POST /login/oauth2/token`, refresh token",
    "s6": "6. `POST /login/canvas`, the login form (argon2id)",
    "s7": "7. `GET /api/v1/users/self/user_generated_tokens` (Access Tokens API list)",
}
# scenario 1 again, on servers that differ in one setting (suffixes of its name)
VARIANTS = {
    "s1": (("-es256", "identity tokens ES256"), ("-eddsa", "identity tokens EdDSA")),
}
WORKERS = 2
PEERS = {
    "asgi-starlette-get": "floor: uvicorn + Starlette, GET constant JSON (wrk without Lua)",
    "asgi-starlette-get-lua": "floor: same, through the Lua script lmsauth's GETs use",
    "asgi-starlette-post": "floor: uvicorn + Starlette, POST form parsed, constant JSON",
    "oidc-provider-token-jwt": "oidc-provider: client_credentials → RS256 JWT",
    "oidc-provider-token-jwt-es256": "oidc-provider: client_credentials → ES256 JWT",
    "oidc-provider-token-jwt-eddsa": "oidc-provider: client_credentials → EdDSA JWT",
    "oidc-provider-introspect": "oidc-provider: token introspection (peer of 2)",
    "oidc-provider-code": "oidc-provider: authorization_code → opaque tokens, in-memory adapter (peer of 4)",
    "oidc-provider-refresh": "oidc-provider: refresh_token, in-memory adapter (peer of 5)",
    "dot-token-hashed": "django-oauth-toolkit: client_credentials, default hashed secret",
    "dot-token-plain": "django-oauth-toolkit: client_credentials, plain secret",
    "dot-resource": "django-oauth-toolkit: protected resource check (peer of 2)",
    "dot-code": "django-oauth-toolkit: authorization_code + PKCE, plain secret, SQLite (peer of 4)",
    "dot-refresh": "django-oauth-toolkit: refresh_token (rotating), plain secret, SQLite (peer of 5)",
}
BACKENDS = (("sqlite", "SQLite"), ("pg", "PostgreSQL"))


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _rps(results: dict[str, Any], name: str) -> float | None:
    row = results.get(name)
    return float(row["rps"]) if row and "rps" in row else None


def _row(name: str, label: str, row: dict[str, Any]) -> str:
    runs = " / ".join(_n(r) for r in row.get("rps_runs", []))
    return (
        f"| {label} | `{name}` | **{_n(row.get('rps'))}** | {runs} | {row.get('p50_ms', '-')} ms | "
        f"{row.get('p99_ms', '-')} ms | {row.get('errors', '-')} | {row.get('peak_rss_mib', '-')} MiB | "
        f"{_n(row.get('server_cpu', 0) * 100)} % | {_n(row.get('db_cpu', 0) * 100)} % | {_cpu_us(row)} |"
    )


def _cpu_us(row: dict[str, Any]) -> str:
    """Server CPU time per request (microseconds): the cost that decides one core's ceiling."""
    rps = row.get("rps")
    return _n(row.get("server_cpu", 0) * 1e6 / rps) if rps else "-"


def _sign_rate(facts: dict[str, Any], alg: str = "RS256") -> tuple[float | None, float | None]:
    raw = jwt = None
    for item in facts.get("sign", {}).get("results", []):
        if item["alg"].split(" ")[0] == alg and item["impl"] == "cryptography.sign":
            raw = float(item["ops_per_s_median"])
        if item["alg"].split(" ")[0] == alg and item["impl"] == "PyJWT jwt.encode":
            jwt = float(item["ops_per_s_median"])
    return raw, jwt


def _runs(results: dict[str, Any], name: str) -> list[float]:
    row = results.get(name)
    if not row or "rps" not in row:
        return []
    return [float(r) for r in row.get("rps_runs") or [row["rps"]]]


def _spread(a: list[float], b: list[float]) -> tuple[float, float] | None:
    """The lowest and highest ratio of a run of ``a`` to a run of ``b``: how far a ratio of
    medians could move between pairings of the same run's repetitions."""
    if not a or not b or min(b) == 0:
        return None
    return min(a) / max(b), max(a) / min(b)


def _target(
    lines: list[str],
    what: str,
    value: float | None,
    goal: float,
    fmt: str,
    *,
    below: bool = False,
    spread: tuple[float, float] | None = None,
) -> None:
    """One target's row. With ``spread`` (the ratio's lowest and highest pairing of the
    repetitions) the row also says when the goal lies inside it: one run's verdict then
    depends on which repetitions are compared, as ANALYSIS.md shows between full runs."""
    if value is None:
        lines.append(f"| {what} | not measured | {fmt.format(goal)} | - |")
        return
    ok = value < goal if below else value >= goal
    measured = fmt.format(value)
    verdict = "met" if ok else "**missed**"
    if spread is not None:
        low, high = spread
        measured += f" (runs {fmt.format(low)} to {fmt.format(high)})"
        if low < goal <= high:
            verdict += ", inside the runs' spread"
    lines.append(f"| {what} | {measured} | {'<' if below else '≥'} {fmt.format(goal)} | {verdict} |")


def _half_rate_p99(lines: list[str], results: dict[str, Any], name: str, what: str, goal_ms: float) -> None:
    """The p99 of ``name``'s run at half its peak rate, against ``goal_ms``."""
    half = results.get(f"{name}-half")
    p99 = float(half["p99_ms"]) if half and "p99_ms" in half else None
    label = f"{what} p99 at half the peak rate"
    if half:
        label += f" (target {_n(half.get('target_rps'))}/s, achieved {_n(half.get('rps'))}/s)"
    _target(lines, label, p99, goal_ms, "{:.2f} ms", below=True)


def _versus(
    lines: list[str], results: dict[str, Any], what: str, name: str, other: str, goal: float, fmt: str
) -> None:
    """The target that row ``name`` reaches ``goal`` times row ``other``'s rate: the ratio of
    their medians, with its spread over their repetitions."""
    _target(
        lines,
        what,
        _ratio(_rps(results, name), _rps(results, other)),
        goal,
        fmt,
        spread=_spread(_runs(results, name), _runs(results, other)),
    )


def _issue13_targets(lines: list[str], results: dict[str, Any], raw_sign: float | None) -> None:
    """Issue 13's goals: the token endpoint's grants against the Starlette POST floor and
    oidc-provider's, their p99 at half their peak rate, and the PostgreSQL reads and logins
    against oidc-provider."""
    lines += ["", "Issue 13's targets:", "", "| target | measured | goal | |", "|---|---:|---:|---|"]
    for short, db in BACKENDS:
        if not any(key.endswith(f"-{short}") for key in results):
            continue
        share = 0.20 if short == "sqlite" else 0.15
        for key, grant, peer in (
            ("s4", "code exchange", "oidc-provider-code"),
            ("s5", "refresh", "oidc-provider-refresh"),
        ):
            name = f"{key}-{short}"
            floor = "asgi-starlette-post"
            _versus(
                lines,
                results,
                f"{key[1]} ({db}, {grant}) / Starlette POST floor",
                name,
                floor,
                share,
                "{:.0%}",
            )
            _half_rate_p99(lines, results, name, f"{key[1]} ({db})", 20)
            if short == "sqlite":
                what = f"{key[1]} ({db}) / oidc-provider's grant (in memory)"
                _versus(lines, results, what, name, peer, 1.0, "{:.2f}x")
        if short == "pg":
            for key in ("s2", "s3"):
                what = f"{key[1]} ({db}) / oidc-provider introspection"
                _versus(lines, results, what, f"{key}-{short}", "oidc-provider-introspect", 1.0, "{:.2f}x")
            what = f"1 ({db}) / oidc-provider RS256 JWT"
            _versus(lines, results, what, "s1-pg", "oidc-provider-token-jwt", 0.9, "{:.2f}x")
        else:
            _target(
                lines,
                f"1 ({db}, RS256) / raw RS256 signing rate",
                _ratio(_rps(results, "s1-sqlite"), raw_sign),
                0.65,
                "{:.0%}",
                spread=_spread(_runs(results, "s1-sqlite"), [raw_sign] if raw_sign else []),
            )


def _ab_sections(folder: Path) -> list[str]:
    """Before/after runs of the command, one pair per change to ``src/``: ``ab/<change>/before``
    and ``ab/<change>/after``, in the order of the folders' names."""
    out: list[str] = []
    for change in sorted(path for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else []:
        out.extend(_ab_section(change))
    return out


def _ab_section(folder: Path) -> list[str]:
    try:
        before = json.loads((folder / "before" / "results" / "results.json").read_text())
        after = json.loads((folder / "after" / "results" / "results.json").read_text())
    except (OSError, ValueError):
        return []
    method = after["facts"]["method"]
    out = [
        f"## Before and after: {folder.name} (two runs of the command, one after the other)",
        "",
        f"Before: {before['facts']['machine']['date_utc']}, serving `{before['facts']['method']['src']}`; "
        f"after: {after['facts']['machine']['date_utc']}, serving the working tree at "
        f"{after['facts']['machine'].get('git_head', '?')}. Same options: "
        f"`--only '{method['only']}'`, {method['reps']} x ({method['warm_s']} s + {method['duration_s']} s). "
        f"Raw output in `ab/{folder.name}/*/results/`.",
        "",
        "| scenario | before req/s | after req/s | change | before CPU µs/req | after CPU µs/req "
        "| before p99 | after p99 | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in after["results"].items():
        old = before["results"].get(name)
        if not old or "rps" not in old or "rps" not in row:
            continue
        change = row["rps"] / old["rps"] - 1
        out.append(
            f"| `{name}` | {_n(old['rps'])} | {_n(row['rps'])} | {change:+.0%} | {_cpu_us(old)} | "
            f"{_cpu_us(row)} | {old.get('p99_ms', '-')} ms | {row.get('p99_ms', '-')} ms | "
            f"{old['errors']} / {row['errors']} |"
        )
    out.append("")
    return out


def write(path: Path, everything: dict[str, Any], bench_dir: Path) -> None:
    facts: dict[str, Any] = everything["facts"]
    results: dict[str, Any] = everything["results"]
    skipped: dict[str, str] = everything.get("skipped", {})
    machine = facts.get("machine", {})
    method = facts.get("method", {})
    quick = method.get("quick")
    plan = facts.get("plan", {})
    small, large = f"{plan.get('live_small', 1000):,}", f"{plan.get('live_large', 1000000):,}"
    lines: list[str] = []
    add = lines.append
    add("# lmsauth benchmarks: side by side with its peers, one core each")
    add("")
    add(
        f"Generated by `{method.get('command', 'benchmarks/run.sh').strip()}` (`python -m benchmarks`) — "
        f"every figure below comes from the one run of {machine.get('date_utc', '?')} "
        f"({facts.get('elapsed_s', '?')} s"
        f"{', **quick smoke mode: not a measurement**' if quick else ''}). "
        "Raw wrk output of every run: `results/raw/`; all figures: `results/results.json`."
    )
    if facts.get("failures"):
        add("")
        add("**Failures in this run:** " + "; ".join(facts["failures"]))
    add("")
    add("## Machine and software")
    add("")
    add("| fact | value |")
    add("|---|---|")
    pg = machine.get("postgresql", {})
    for key, value in (
        (
            "CPU",
            f"{machine.get('cpu')} x {machine.get('nproc')} (server on CPU {method.get('server_cpu')}, "
            f"wrk on CPU {method.get('client_cpu')})",
        ),
        ("memory", f"{machine.get('mem_gib')} GiB"),
        ("kernel", machine.get("kernel")),
        (
            "load average (1, 5, 15 min) at start / end",
            f"{' '.join(machine.get('loadavg_at_start', []))} / {' '.join(facts.get('loadavg_at_end', []))}",
        ),
        ("Python", machine.get("python")),
        ("SQLite", f"{machine.get('sqlite')} (WAL, synchronous=NORMAL: lmsauth's settings)"),
        (
            "PostgreSQL",
            f"{pg.get('version', '?')[:40]}; shared_buffers {pg.get('shared_buffers')}, "
            f"synchronous_commit {pg.get('synchronous_commit')}, fsync {pg.get('fsync')}; "
            "same machine, not pinned",
        ),
        ("wrk", machine.get("wrk")),
        ("node", machine.get("node")),
        ("lmsauth tree", f"{machine.get('git_head')} plus uncommitted changes; served: {method.get('src')}"),
        ("lmsauth's packages", ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())),
        ("peers", ", ".join(f"{k} {v}" for k, v in facts.get("peer_versions", {}).items())),
    ):
        add(f"| {key} | {value} |")
    add("")
    add("## Method")
    add("")
    add(
        f"Every contender runs pinned to CPU {method.get('server_cpu')} (`taskset`), and "
        f"`wrk -t1 -c{method.get('connections')}` pinned to CPU {method.get('client_cpu')}. "
        f"Each scenario: a preflight request (status and body checked), then {method.get('reps')} x "
        f"({method.get('warm_s')} s warm-up + {method.get('duration_s')} s measured), waiting for the "
        "server to go idle before each run. The median run is shown (all runs listed); errors are "
        "summed over every run *including warm-ups* (non-2xx, socket errors, timeouts, and any "
        "status other than the expected one, checked in `bench.lua`). Peak RSS is the server's "
        "process tree, sampled every 0.2 s. *server CPU* is the server tree's CPU time over the run; "
        "*DB CPU* is PostgreSQL's (all its processes, on either core; SQLite runs inside the server). "
        "lmsauth is `lmsauth serve` (uvicorn, uvloop, httptools, 1 process, access log off with "
        "`LMSAUTH_LOG_LEVEL=warning`, as `--no-access-log` for the Starlette floor)."
    )
    add("")
    add("## Results")
    add("")
    add(
        "| contender and scenario | name | req/s | runs | p50 | p99 | errors | peak RSS "
        "| server CPU | DB CPU | server CPU µs/request |"
    )
    add("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, label in PEERS.items():
        if name in results:
            add(_row(name, label, results[name]))
    for short, db in BACKENDS:
        for key, label in SCENARIOS.items():
            for suffix, extra in (("", f", {small} live"), ("-1m", f", {large} live")):
                name = f"{key}-{short}{suffix}"
                if name in results:
                    live = extra if key in ("s2", "s3") else ""
                    add(_row(name, f"lmsauth {label}{live}, {db}", results[name]))
            for suffix, what in VARIANTS.get(key, ()):
                name = f"{key}-{short}{suffix}"
                if name in results:
                    add(_row(name, f"lmsauth {label}, {what}, {db}", results[name]))
            name = f"{key}-{short}-w{WORKERS}"
            if name in results:
                add(
                    _row(
                        name,
                        f"lmsauth {label}, `--workers {WORKERS}` on both cores (wrk contended), {db}",
                        results[name],
                    )
                )
    raw_sign, jwt_sign = _sign_rate(facts)
    add("")
    add(
        f"Signing on the server core (project venv, `jwt_sign_bench.py` from peers-bench): RS256 raw "
        f"`cryptography` **{_n(raw_sign)}**/s, PyJWT `jwt.encode` {_n(jwt_sign)}/s."
    )
    for item in facts.get("sign", {}).get("results", []):
        if not item["alg"].startswith("RS256"):
            add(f"- {item['alg']} {item['impl']}: {_n(item['ops_per_s_median'])}/s")
    for short, db in BACKENDS:
        limit = facts.get(f"write_limit_{short}")
        if limit:
            add("")
            add(
                f"Limit of scenarios 4 and 5 ({db}, `benchmarks/write_limit.py`): the statements the "
                "token endpoint ran for each grant, recorded in-process and replayed on the raw driver "
                "(`sqlite3`) on the server core, nothing else around them:"
            )
            add("")
            add(
                "| scenario | grants replayed | statements per grant | CPU µs/grant | wall µs/grant "
                "| grants per CPU second |"
            )
            add("|---|---:|---:|---:|---:|---:|")
            for key in ("s4", "s5"):
                if key in limit:
                    row = limit[key]
                    add(
                        f"| {key[1]} (limit) | {_n(row['grants'])} | {row['statements_per_grant']} | "
                        f"{_n(row['cpu_us'], 1)} | {_n(row['wall_us'], 1)} | **{_n(row['rps'])}** |"
                    )
    argon2 = facts.get("argon2")
    if argon2:
        add("")
        add(
            f"Scenario 6 hashes with {argon2['type']}: time_cost {argon2['time_cost']}, "
            f"memory_cost {_n(argon2['memory_cost_kib'])} KiB, parallelism {argon2['parallelism']}, "
            f"hash length {argon2['hash_len']}; {argon2['hashes_at_once']} hash at a time on the one "
            "server core, so its req/s are logins per second per core."
        )
    if skipped:
        add("")
        add("Not run: " + "; ".join(f"`{k}`: {v}" for k, v in sorted(skipped.items())))

    add("")
    add("## Targets (from this run)")
    oidc, dot_h, dot_p = (
        _rps(results, n) for n in ("oidc-provider-token-jwt", "dot-token-hashed", "dot-token-plain")
    )
    floor_get = _rps(results, "asgi-starlette-get")
    _issue13_targets(lines, results, raw_sign)
    add("")
    add("Earlier issues' targets:")
    add("")
    add("| target | measured | goal | |")
    add("|---|---:|---:|---|")
    for short, db in BACKENDS:
        s1 = _rps(results, f"s1-{short}")
        if s1 is None and f"s1-{short}" not in skipped and short == "pg" and "s2-pg" not in results:
            continue
        _target(lines, f"1 ({db}) / oidc-provider JWT", _ratio(s1, oidc), 1.5, "{:.2f}x")
        _target(lines, f"1 ({db}) / DOT (default hashed secret)", _ratio(s1, dot_h), 5, "{:.1f}x")
        _target(lines, f"1 ({db}) / raw RS256 signing rate", _ratio(s1, raw_sign), 0.60, "{:.0%}")
        for key in ("s2", "s3"):
            n = key[1]
            rps = _rps(results, f"{key}-{short}")
            _target(lines, f"{n} ({db}) / constant-response floor", _ratio(rps, floor_get), 0.5, "{:.0%}")
            _half_rate_p99(lines, results, f"{key}-{short}", f"{n} ({db})", 10)
            big = _rps(results, f"{key}-{short}-1m")
            _target(
                lines, f"{n} ({db}) {large} live / {small} live, throughput", _ratio(big, rps), 0.9, "{:.0%}"
            )
            small_rss = results.get(f"{key}-{short}", {}).get("peak_rss_mib")
            big_rss = results.get(f"{key}-{short}-1m", {}).get("peak_rss_mib")
            growth = _ratio(big_rss, small_rss)
            _target(
                lines,
                f"{n} ({db}) {large} live / {small} live, peak RSS growth",
                None if growth is None else growth - 1,
                0.10,
                "{:+.1%}",
                below=True,
            )
        rss = facts.get(f"rss_{short}")
        if rss:
            _target(
                lines,
                f"RSS after {_n(rss['requests_total'])} requests vs after {_n(rss['requests_first'])} "
                f"({db}, scenario 2: {rss['rss_first_mib']} → {rss['rss_last_mib']} MiB)",
                rss["growth"],
                0.10,
                "{:+.1%}",
                below=True,
            )

    add("")
    add("## Other ratios (lmsauth / peer, lmsauth / limit)")
    add("")
    add("| ratio | value |")
    add("|---|---:|")
    floor_post = _rps(results, "asgi-starlette-post")
    intro, dres = _rps(results, "oidc-provider-introspect"), _rps(results, "dot-resource")
    for short, db in BACKENDS:
        pairs = (
            (f"1 ({db}) / DOT plain secret", _rps(results, f"s1-{short}"), dot_p),
            (f"1 ({db}) / PyJWT RS256 signing rate", _rps(results, f"s1-{short}"), jwt_sign),
            (f"1 ({db}) / Starlette POST floor", _rps(results, f"s1-{short}"), floor_post),
            (f"2 ({db}) / oidc-provider introspection", _rps(results, f"s2-{short}"), intro),
            (f"2 ({db}) / DOT protected resource", _rps(results, f"s2-{short}"), dres),
            (f"3 ({db}) / oidc-provider introspection", _rps(results, f"s3-{short}"), intro),
            (f"4 ({db}) / Starlette POST floor", _rps(results, f"s4-{short}"), floor_post),
            (f"4 ({db}) / DOT plain secret (token issue, SQLite)", _rps(results, f"s4-{short}"), dot_p),
            (f"5 ({db}) / Starlette POST floor", _rps(results, f"s5-{short}"), floor_post),
            (f"4 ({db}) / DOT authorization_code", _rps(results, f"s4-{short}"), _rps(results, "dot-code")),
            (f"5 ({db}) / DOT refresh_token", _rps(results, f"s5-{short}"), _rps(results, "dot-refresh")),
            (
                f"4 ({db}) / oidc-provider authorization_code",
                _rps(results, f"s4-{short}"),
                _rps(results, "oidc-provider-code"),
            ),
            (
                f"5 ({db}) / oidc-provider refresh_token",
                _rps(results, f"s5-{short}"),
                _rps(results, "oidc-provider-refresh"),
            ),
            (
                f"7 ({db}) / 2 (the same bearer check, then a page of tokens)",
                _rps(results, f"s7-{short}"),
                _rps(results, f"s2-{short}"),
            ),
        )
        for label, a, b in pairs:
            r = _ratio(a, b)
            if r is not None:
                add(f"| {label} | {r:.2f}x |")
    for short, db in BACKENDS:
        for alg, suffix in (("RS256", ""), ("ES256", "-es256"), ("EdDSA", "-eddsa")):
            s1 = _rps(results, f"s1-{short}{suffix}")
            peer = _rps(results, f"oidc-provider-token-jwt{suffix}")
            raw_alg, _ = _sign_rate(facts, alg)
            for label, b in ((f"oidc-provider {alg}", peer), (f"raw {alg} signing rate", raw_alg)):
                r = _ratio(s1, b)
                if r is not None:
                    add(f"| 1 ({db}, identity tokens {alg}) / {label} | {r:.2f}x |")
        for key in ("s1", "s2"):
            r = _ratio(_rps(results, f"{key}-{short}-w{WORKERS}"), _rps(results, f"{key}-{short}"))
            if r is not None:
                add(f"| {key[1]} ({db}) `--workers {WORKERS}` / 1 worker (wrk contended) | {r:.2f}x |")
        limit = facts.get(f"write_limit_{short}", {})
        for key in ("s4", "s5"):
            row = results.get(f"{key}-{short}")
            if key in limit and row and row.get("rps"):
                # CPU against CPU: the replay runs alone, the server under load
                served = row.get("server_cpu", 0) * 1e6 / row["rps"]
                r = _ratio(limit[key]["cpu_us"], served)
                if r is not None:
                    add(
                        f"| {key[1]} ({db}): limit's CPU per grant / lmsauth's CPU per request "
                        f"(the storage statements' share) | {r:.1%} |"
                    )
    floor_lua = _rps(results, "asgi-starlette-get-lua")
    if floor_lua and floor_get:
        add(f"| floor through Lua / floor without (load generator cost) | {floor_lua / floor_get:.2f}x |")

    add("")
    add("## Storage and memory at scale")
    add("")
    add(
        f"| backend | bytes per access token ({small} rows) | bytes per token (top-up to {large}) | "
        "bytes per Commons session | rows in `access_tokens` at the large run |"
    )
    add("|---|---:|---:|---:|---:|")
    for short, db in BACKENDS:
        if f"token_bytes_small_{short}" in facts:
            add(
                f"| {db} | {_n(facts.get(f'token_bytes_small_{short}'))} | "
                f"{_n(facts.get(f'token_bytes_large_{short}'))} | "
                f"{_n(facts.get(f'session_bytes_{short}'))} | "
                f"{_n(facts.get(f'tokens_large_{short}'))} |"
            )
    add("")
    add(
        "Bytes per row include the table's indexes (PostgreSQL: `pg_total_relation_size`; SQLite: growth "
        "of the database file after a WAL checkpoint)."
    )
    for short, db in BACKENDS:
        rss = facts.get(f"rss_{short}")
        if rss:
            add("")
            if rss["requests_total"] < rss.get("requests_planned", 0) * 0.99:
                add("")
                add(
                    f"**The RSS run reached {_n(rss['requests_total'])} of the planned "
                    f"{_n(rss['requests_planned'])} requests** within its {_n(rss['seconds_bound'])} s "
                    "bound (the run's time budget); the growth below is measured over what it reached."
                )
            add(
                f"RSS ({db}, scenario 2, one server): {rss['rss_first_mib']} MiB after "
                f"{_n(rss['requests_first'])} requests, {rss['rss_last_mib']} MiB after "
                f"{_n(rss['requests_total'])} ({rss['growth']:+.1%}); {_n(rss['rps_rest'])} req/s, "
                f"{rss['errors']} errors."
            )
    for short, db in BACKENDS:
        pieces = facts.get(f"breakdown_{short}")
        if pieces:
            add("")
            add(
                f"Scenario 2's pieces in-process on the server core ({db}, `benchmarks/breakdown.py`, "
                f"{plan.get('breakdown_calls', 2000):,} sequential calls each, no HTTP):"
            )
            add("")
            add("| piece | CPU µs/call | wall µs/call |")
            add("|---|---:|---:|")
            for label, value in pieces.items():
                add(f"| {label} | {_n(value['cpu_us'])} | {_n(value['wall_us'])} |")
    ab = _ab_sections(bench_dir / "ab")
    if ab and not quick:
        add("")
        lines.extend(ab[:-1])
    notes = bench_dir / "ANALYSIS.md"
    if notes.exists() and not quick:
        add("")
        add(notes.read_text().rstrip())
    add("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
