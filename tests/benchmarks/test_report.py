"""RESULTS.md's target rows: a ratio of medians, and (issue 13) how far it moves between the
pairings of one run's repetitions, so that a verdict decided by which repetitions are compared
says so."""

from __future__ import annotations

from benchmarks import report


def _rows(grant_runs: list[float], floor_runs: list[float]) -> str:
    results = {
        "asgi-starlette-post": {"rps": sorted(floor_runs)[1], "rps_runs": floor_runs},
        "s4-sqlite": {"rps": sorted(grant_runs)[1], "rps_runs": grant_runs},
    }
    lines: list[str] = []
    report._issue13_targets(lines, results, None)
    prefix = "| 4 (SQLite, code exchange) / Starlette POST floor"
    return next(line for line in lines if line.startswith(prefix))


def test_a_goal_inside_the_runs_spread_is_named() -> None:
    row = _rows([2087, 1634, 1843], [10157, 12148, 13324])
    assert "| 15% (runs 12% to 21%) | ≥ 20% | **missed**, inside the runs' spread |" in row


def test_a_goal_outside_the_spread_is_a_plain_verdict() -> None:
    missed = _rows([1222, 1484, 1789], [10157, 12148, 13324])
    assert missed.endswith("| 12% (runs 9% to 18%) | ≥ 20% | **missed** |")
    met = _rows([3000, 3100, 3200], [10000, 10100, 10200])
    assert met.endswith("| 31% (runs 29% to 32%) | ≥ 20% | met |")


def test_a_row_without_repetitions_keeps_its_single_figure() -> None:
    lines: list[str] = []
    report._target(lines, "x", 0.5, 0.6, "{:.0%}")
    assert lines == ["| x | 50% | ≥ 60% | **missed** |"]
    assert report._spread([], [1.0]) is None and report._spread([1.0], [0.0]) is None
