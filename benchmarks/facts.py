"""Facts about the machine and the software measured, recorded with every run."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "lmsauth",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "SQLAlchemy",
    "aiosqlite",
    "asyncpg",
    "cryptography",
    "PyJWT",
    "python-multipart",
)


def _out(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    return (done.stdout or done.stderr).strip()


def _lscpu_model() -> str:
    for line in _out(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _mem_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def postgres_facts() -> dict[str, str]:
    query = (
        "select version(); show shared_buffers; show synchronous_commit; show fsync; "
        "show max_connections; show wal_level"
    )
    text = _out(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc", query])
    names = ("version", "shared_buffers", "synchronous_commit", "fsync", "max_connections", "wal_level")
    return dict(zip(names, text.splitlines(), strict=False))


def machine_facts() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "cpu": _lscpu_model(),
        "nproc": os.cpu_count(),
        "mem_gib": _mem_gib(),
        "kernel": platform.release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_facts(),
        "wrk": _out(["dpkg-query", "-W", "-f=${Version}", "wrk"]),
        "node": _out(["node", "--version"]),
        "packages": versions,
        "git_head": _out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
    }
