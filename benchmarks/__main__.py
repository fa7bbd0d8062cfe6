"""``python -m benchmarks``: lmsauth side by side with its peers, on one core each.

    .venv/bin/python -m benchmarks            # the full run (about 45 minutes): RESULTS.md
    .venv/bin/python -m benchmarks --quick    # CI smoke: SQLite, small sizes, 1-2 s runs
    .venv/bin/python -m benchmarks --only 's2-|asgi-'   # a subset (regex on scenario names)

Writes ``<out>/RESULTS.md`` (default ``benchmarks/RESULTS.md``; ``--quick`` writes under
``benchmarks/.work/quick``), ``<out>/results/results.json`` and the raw wrk output of every
run under ``<out>/results/raw``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import lmsauth_bench, peers, report
from benchmarks.facts import machine_facts
from benchmarks.load import BenchError, Result, Settings

HERE = Path(__file__).resolve().parent
_NO_RUN = Result("none")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke: tiny sizes and short runs")
    ap.add_argument("--only", default=".", help="regex: run only scenarios whose name matches")
    ap.add_argument("--no-peers", action="store_true", help="skip the peers (and their install)")
    ap.add_argument("--backends", default=None, help="comma list: sqlite,postgresql")
    ap.add_argument("--out", type=Path, default=None, help="where RESULTS.md and results/ go")
    ap.add_argument("--work", type=Path, default=HERE / ".work", help="scratch folder (peers, data)")
    ap.add_argument("--warm", type=float, default=None)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--no-scale", action="store_true", help="skip the 1,000,000-row runs")
    ap.add_argument("--no-rss", action="store_true", help="skip the 1,000,000-request RSS run")
    ap.add_argument("--live-large", type=int, default=None, help="rows of the large runs (1,000,000)")
    ap.add_argument("--rss-requests", type=int, default=None, help="requests of the RSS run (1,000,000)")
    ap.add_argument("--rss-seconds", type=float, default=None, help="wall-clock bound of the RSS run")
    ap.add_argument("--src", type=Path, default=None, help="serve lmsauth from this src/ copy instead")
    ap.add_argument("--report-only", action="store_true", help="rebuild RESULTS.md from results.json")
    ap.add_argument("--server-cpu", type=int, default=0, help="core for every server under test")
    ap.add_argument("--client-cpu", type=int, default=None, help="core for wrk (default: 1, or 0 on 1 CPU)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.time()
    work: Path = args.work.resolve()
    if args.quick:
        cfg = Settings(warm=1, duration=2, reps=1)
        dot_cfg = Settings(warm=0, duration=2, reps=1)
        plan = lmsauth_bench.Plan(
            live_small=1_000,
            live_large=5_000,
            sample_large=1_000,
            rss_first=500,
            rss_total=2_000,
            rss_seconds=15,
            breakdown_calls=200,
            codes_per_second=4_000,
            limit_grants=300,
            half_rate=True,
            backends=("sqlite",),
        )
        out = (args.out or work / "quick").resolve()
        sign_seconds, sign_repeat = 0.3, 1
    else:
        cfg = Settings()
        # DOT with its default hashed secret answers ~4 requests/s: one long run says enough.
        dot_cfg = Settings(warm=3, duration=10, reps=1)
        plan = lmsauth_bench.Plan()
        out = (args.out or HERE).resolve()
        sign_seconds, sign_repeat = 1.0, 3
    cfg.server_cpu = dot_cfg.server_cpu = args.server_cpu
    client = args.client_cpu if args.client_cpu is not None else (1 if (os.cpu_count() or 1) > 1 else 0)
    cfg.client_cpu = dot_cfg.client_cpu = client
    if args.warm is not None:
        cfg.warm = args.warm
    if args.duration is not None:
        cfg.duration = args.duration
    if args.reps is not None:
        cfg.reps = args.reps
    if args.backends:
        plan.backends = tuple(args.backends.split(","))
    if args.live_large is not None:
        plan.live_large = args.live_large
    if args.rss_requests is not None:
        plan.rss_total = args.rss_requests
    if args.rss_seconds is not None:
        plan.rss_seconds = args.rss_seconds
    if args.no_scale:
        plan.scale = False

    if args.report_only:
        saved: dict[str, Any] = json.loads((out / "results" / "results.json").read_text())
        report.write(out / "RESULTS.md", saved, HERE)
        print(f"rebuilt {out / 'RESULTS.md'} from {out / 'results' / 'results.json'}")
        return 0
    if args.src is not None:
        os.environ["LMSAUTH_BENCH_SRC"] = str(args.src.resolve())
    pattern = re.compile(args.only)

    def want(name: str) -> bool:
        return bool(pattern.search(name))

    results_dir = out / "results"
    raw = results_dir / "raw"
    if raw.exists():
        shutil.rmtree(raw)
    raw.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)

    outcome = lmsauth_bench.Outcome()
    outcome.facts["machine"] = machine_facts()
    outcome.facts["method"] = {
        "warm_s": cfg.warm,
        "duration_s": cfg.duration,
        "reps": cfg.reps,
        "connections": cfg.connections,
        "server_cpu": cfg.server_cpu,
        "client_cpu": cfg.client_cpu,
        "quick": args.quick,
        "only": args.only,
        "command": "benchmarks/run.sh " + " ".join(sys.argv[1:] if argv is None else argv),
        "src": str(args.src.resolve()) if args.src else "the working tree (.venv's editable install)",
    }
    outcome.facts["plan"] = vars(plan).copy()
    peer_results = {}
    failures: list[str] = []
    try:
        if not args.no_peers:
            peers_dir = work / "peers"
            try:
                peers.install(peers_dir)
                if want("sign"):
                    print("== RS256 signing rate on the server core", flush=True)
                    outcome.facts["sign"] = peers.sign_rate(
                        cfg, results_dir / "jwt_sign.json", sign_seconds, sign_repeat
                    )
                peer_results = peers.run_peers(peers_dir, cfg, raw, want, dot_cfg, failures)
                outcome.facts["peer_versions"] = peers.versions(peers_dir)
            except (BenchError, RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                failures.append(f"peers: {exc.__class__.__name__}: {exc}")
                print(f"!! peers: {exc}", flush=True)
        for name in plan.backends:
            b = lmsauth_bench.backend(name, work)
            try:
                lmsauth_bench.run_backend(b, plan, cfg, work, raw, outcome, want)
            except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failures.append(f"{name}: {exc.__class__.__name__}: {exc}")
                print(f"!! {name}: {exc}", flush=True)
        if not args.no_rss and plan.backends:
            # Last, on the backend that served scenario 2 fastest (1,000,000 requests take long).
            backends = [lmsauth_bench.backend(name, work) for name in plan.backends]
            best = max(backends, key=lambda b: outcome.results.get(f"s2-{b.short}", _NO_RUN).rps_or_zero())
            if want(f"rss-{best.short}"):
                print(f"== RSS after {plan.rss_total:,} requests ({best.name})", flush=True)
                try:
                    lmsauth_bench.rss_growth(best, plan, cfg, work, raw, outcome)
                except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    failures.append(f"rss: {exc.__class__.__name__}: {exc}")
    finally:
        outcome.facts["elapsed_s"] = round(time.time() - started)
        outcome.facts["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
        outcome.facts["failures"] = failures
        everything: dict[str, Any] = {
            "facts": outcome.facts,
            "skipped": outcome.skipped,
            "results": {k: v.summary() for k, v in {**peer_results, **outcome.results}.items()},
        }
        (results_dir / "results.json").write_text(json.dumps(everything, indent=2, default=str))
        report.write(out / "RESULTS.md", everything, HERE)
        print(f"wrote {out / 'RESULTS.md'} in {outcome.facts['elapsed_s']} s", flush=True)
    errors = sum(int(r.get("errors", 0)) for r in everything["results"].values())
    if failures or errors:
        print(f"FAILED: {len(failures)} failures, {errors} request errors", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
