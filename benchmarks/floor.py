"""The Starlette POST floor alone, without installing the other peers.

    .venv/bin/python -m benchmarks.floor OUT.json --peers DIR [--duration 10 --reps 3]

``asgi-starlette-post`` exactly as the full run measures it (``peers.run_peers``: same app,
server options, pinning and wrk settings), for A/B tables that quote lmsauth's rows as a share
of the floor measured in the same minutes. ``DIR/venv`` holds the peers' pinned uvicorn,
Starlette and FastAPI (``asgi_apps`` imports both): ``python3 -m venv DIR/venv`` and
``DIR/venv/bin/pip install`` those lines of ``peers-bench/requirements.lock.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import peers
from benchmarks.load import Settings

NAME = "asgi-starlette-post"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    ap.add_argument("out", type=Path)
    ap.add_argument("--peers", type=Path, required=True)
    ap.add_argument("--warm", type=float, default=3.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = Settings(warm=args.warm, duration=args.duration, reps=args.reps)
    failures: list[str] = []
    raw = args.out.resolve().parent / "raw"
    results = peers.run_peers(args.peers.resolve(), cfg, raw, lambda name: name == NAME, cfg, failures)
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    args.out.write_text(json.dumps({NAME: results[NAME].summary()}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
