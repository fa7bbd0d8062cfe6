"""The Starlette POST floor alone, served from the project's own venv (no peers install).

    .venv/bin/python -m benchmarks.floor OUT.json --venv VENV [--duration 10 --reps 3]

The same app, server options, pinning and wrk settings as ``asgi-starlette-post`` in the full
run (``peers.run_peers``), for A/B tables that quote lmsauth's rows as a share of the floor
measured in the same minutes. ``VENV`` holds the peers' pinned uvicorn, Starlette and FastAPI
(``asgi_apps`` imports both): ``python3 -m venv V && V/bin/pip install`` those lines of
``peers-bench/requirements.lock.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks import procs
from benchmarks.load import Request, Settings, measure
from benchmarks.peers import PEERS_BENCH

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    ap.add_argument("out", type=Path)
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--warm", type=float, default=3.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = Settings(warm=args.warm, duration=args.duration, reps=args.reps)
    raw = args.out.resolve().parent / "raw"
    port = procs.free_port()
    server = procs.start(
        "asgi-starlette",
        [
            str(args.venv.resolve() / "bin" / "uvicorn"),
            "asgi_apps:starlette_app",
            "--app-dir",
            str(PEERS_BENCH),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        log_dir=raw,
        cpu=cfg.server_cpu,
    )
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/ping", server)
        request = Request(
            f"http://127.0.0.1:{port}/token", method="POST", body="grant_type=client_credentials&scope=api%3Aread"
        )
        result = measure("asgi-starlette-post", server, cfg, raw, lambda rep: request, expect_text="access_token")
    finally:
        procs.stop(server)
    args.out.write_text(json.dumps({"asgi-starlette-post": result.summary()}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
