"""Start-up times: how long ``lmsauth serve --demo`` takes until ``/readyz`` answers, on a new
data folder and again on the same one, and how long two CLI commands take, for one or more
source trees, alternated round by round.

    python -m benchmarks.startup [--rounds N] [--json FILE] [SRC ...]

``SRC`` is a ``src/`` folder (default: this checkout's); several are measured in turn, each
round visiting every tree, so that the machine's drift falls on all of them. Every command runs
pinned to one core (``--cpu``, default 0), on SQLite, with no ``LMSAUTH_*`` variable but its own.
The figures are wall seconds, the median of the rounds and the lowest and highest beside it.
Start-up is what a developer waits for after ``./scripts/serve`` and after each CLI verb, and
what every ``lmsauth serve`` and CLI call in the test suite costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks.procs import free_port

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("serve, new folder", "serve, again", "lmsauth --help", "lmsauth user list")


def _env(src: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSAUTH_")}
    env.update(PYTHONPATH=str(src), LMSAUTH_DATA_DIR=str(data_dir), LMSAUTH_LOG_LEVEL="warning")
    return env


def _cli(cpu: int, *args: str) -> list[str]:
    return ["taskset", "-c", str(cpu), sys.executable, "-m", "lmsauth.cli", *args]


def time_serve(src: Path, data_dir: Path, cpu: int, timeout: float = 60.0) -> float:
    """Seconds from starting ``lmsauth serve --demo`` to its first answer of ``/readyz``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    started = time.perf_counter()
    proc = subprocess.Popen(
        _cli(cpu, "serve", "--demo", "--port", str(port)),
        env=_env(src, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            if proc.poll() is not None:
                said = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"lmsauth serve exited: {said[-2000:]}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def time_command(src: Path, data_dir: Path, cpu: int, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(_cli(cpu, *args), env=_env(src, data_dir), check=True, capture_output=True)
    return time.perf_counter() - started


def one_round(src: Path, cpu: int) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="lmsauth-startup-"))
    try:
        return {
            STEPS[0]: time_serve(src, data_dir, cpu),
            STEPS[1]: time_serve(src, data_dir, cpu),
            STEPS[2]: time_command(src, data_dir, cpu, "--help"),
            STEPS[3]: time_command(src, data_dir, cpu, "user", "list", "--json"),
        }
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def measure(trees: list[Path], rounds: int, cpu: int) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {str(t): {step: [] for step in STEPS} for t in trees}
    for _ in range(rounds):
        for tree in trees:
            for step, seconds in one_round(tree, cpu).items():
                times[str(tree)][step].append(seconds)
    return times


def table(times: dict[str, dict[str, list[float]]]) -> str:
    trees = list(times)
    lines = ["| step | " + " | ".join(f"`{tree}`" for tree in trees) + " |", "|---" * (len(trees) + 1) + "|"]
    for step in STEPS:
        cells = []
        for tree in trees:
            seen = times[tree][step]
            cells.append(f"{statistics.median(seen):.2f} s ({min(seen):.2f}-{max(seen):.2f})")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("trees", nargs="*", type=Path, help="src/ folders (default: this checkout's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    args = parser.parse_args(argv)
    trees = [tree.resolve() for tree in args.trees] or [ROOT / "src"]
    for tree in trees:
        if not (tree / "lmsauth" / "cli.py").is_file():
            parser.error(f"{tree} is not a src/ folder holding lmsauth")
    times = measure(trees, args.rounds, args.cpu)
    if args.json:
        args.json.write_text(json.dumps(times, indent=1) + "\n")
    print(f"{args.rounds} rounds, trees alternated, wall seconds: median (lowest-highest)")
    print(table(times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
