"""CI smoke run of the benchmark (``benchmarks/run.sh --quick``): every lmsauth scenario on
SQLite for a couple of seconds. It checks that the harness runs, that no request fails and
that RESULTS.md and results.json are written; it asserts no performance figure (those are
measured by the full run on a quiet machine, not in CI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_quick_benchmark_runs_without_errors(tmp_path: Path) -> None:
    # Missing tools fail the run: a benchmark that cannot pin or load must not pass silently.
    assert shutil.which("taskset") is not None, "taskset (util-linux) is not installed"
    assert shutil.which("wrk") is not None, "wrk is not installed (apt-get install wrk)"
    out = tmp_path / "out"
    done = subprocess.run(
        [
            str(ROOT / "benchmarks" / "run.sh"),
            "--quick",
            "--no-peers",
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LMSAUTH_")},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results" / "results.json").read_text())
    assert not results["facts"]["failures"]
    measured = results["results"]
    for name in ("s2-sqlite", "s4-sqlite", "s5-sqlite"):
        assert measured[name]["rps"] > 0, name
    for name, row in measured.items():
        assert row.get("errors", 0) == 0, (name, row)
    assert results["skipped"] == {}
    for name in ("s1-sqlite", "s3-sqlite"):
        assert measured[name]["rps"] > 0, name
    # issue 13's scenarios: the login form, the tokens list, scenario 1 under ES256 and EdDSA,
    # two worker processes, and the write scenarios' statements on the raw driver
    for name in ("s7-sqlite", "s1-sqlite-es256", "s1-sqlite-eddsa", "s1-sqlite-w2", "s2-sqlite-w2"):
        assert measured[name]["rps"] > 0, name
    # The login form ran (its preflight signed in: a 302), but a 2-second window may see no
    # login finish: 32 argon2id hashes queue for one core, and a loaded machine takes seconds.
    assert "s6-sqlite" in measured
    assert results["facts"]["argon2"]["type"] == "ID"
    limit = results["facts"]["write_limit_sqlite"]
    assert limit["s4"]["rps"] > 0 and limit["s5"]["rps"] > 0
    report = (out / "RESULTS.md").read_text()
    assert "s2-sqlite" in report
    assert (out / "results" / "raw").is_dir()
