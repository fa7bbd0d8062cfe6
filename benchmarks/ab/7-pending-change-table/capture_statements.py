"""A/B 7's statement-level figure: what one change row costs a writer's transaction on bare
``sqlite3``, logged into the indexed log (``old``), into an unindexed pending table moved into
the log when stamped (``new``), or not at all (``none``), with the stamping cost per row.

    python benchmarks/ab/7-pending-change-table/capture_statements.py none old new

WAL, synchronous=NORMAL, one write transaction per change as the token endpoint commits them,
200,000 stamped rows in the log first. Prints CPU microseconds per grant and per stamped row.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

LOG = {"old": "export_changes", "new": "export_changes_pending", "none": None}


def setup(path: Path, design: str) -> sqlite3.Connection:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute(
        "CREATE TABLE export_changes (id INTEGER PRIMARY KEY, table_name VARCHAR(64) NOT NULL, "
        "row_key BIGINT NOT NULL, stamped_at DATETIME)"
    )
    c.execute("CREATE INDEX w ON export_changes (table_name, stamped_at, row_key)")
    c.execute("CREATE INDEX k ON export_changes (table_name, row_key, stamped_at)")
    c.execute("CREATE INDEX s ON export_changes (stamped_at)")
    c.execute(
        "CREATE TABLE export_changes_pending (id INTEGER PRIMARY KEY, table_name VARCHAR(64) NOT NULL, "
        "row_key BIGINT NOT NULL)"
    )
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    log = LOG[design]
    if log:
        c.execute(
            f"CREATE TRIGGER tr AFTER INSERT ON t BEGIN "
            f"INSERT INTO {log} (table_name, row_key) VALUES ('access_tokens', NEW.id); END"
        )
    c.execute("BEGIN")
    c.executemany(
        "INSERT INTO export_changes (table_name, row_key, stamped_at) "
        "VALUES ('access_tokens', ?, '2026-12-01 00:00:00.000000')",
        ((i,) for i in range(200_000)),
    )
    c.execute("COMMIT")
    return c


def stamp(c: sqlite3.Connection, design: str, stamp_at: str, batch: int) -> int:
    if design == "old":
        return c.execute(
            "UPDATE export_changes SET stamped_at = ? WHERE id IN "
            "(SELECT id FROM export_changes WHERE stamped_at IS NULL LIMIT ?)",
            (stamp_at, batch),
        ).rowcount
    if design == "new":
        last = c.execute(
            "SELECT max(id) FROM (SELECT id FROM export_changes_pending ORDER BY id LIMIT ?)", (batch,)
        ).fetchone()[0]
        if last is None:
            return 0
        moved = c.execute(
            "INSERT INTO export_changes (table_name, row_key, stamped_at) SELECT table_name, row_key, ? "
            "FROM export_changes_pending WHERE id <= ? ORDER BY id",
            (stamp_at, last),
        ).rowcount
        c.execute("DELETE FROM export_changes_pending WHERE id <= ?", (last,))
        return moved
    return 0


def run(design: str, grants: int = 30_000, batch: int = 1_000) -> str:
    with tempfile.TemporaryDirectory() as folder:
        c = setup(Path(folder) / "log.db", design)
        started = time.process_time()
        for _ in range(grants):
            c.execute("BEGIN IMMEDIATE")
            c.execute("INSERT INTO t (v) VALUES (?)", ("x" * 40,))
            c.execute("COMMIT")
        written = time.process_time()
        second = 0
        while True:
            second += 1
            c.execute("BEGIN IMMEDIATE")
            moved = stamp(c, design, f"2026-12-04 00:00:{second:02d}.000000", batch)
            c.execute("COMMIT")
            if moved < batch:
                break
        stamped = time.process_time()
        c.close()
    per = 1e6 / grants
    return (
        f"{design}: write {(written - started) * per:.1f} us/grant, stamp {(stamped - written) * per:.1f} "
        f"us/row, total {(stamped - started) * per:.1f}"
    )


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(run(name))
