"""``benchmarks/startup.py`` measures what it says, on this checkout (one round; no figure is
asserted but that each step took some time and left nothing behind)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from benchmarks import startup

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_one_round_times_every_step_and_writes_its_figures(tmp_path: Path, capsys) -> None:
    out = tmp_path / "startup.json"
    folders = set(Path(tempfile.gettempdir()).glob("lmsauth-startup-*"))
    assert startup.main(["--rounds", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for step in startup.STEPS:
        assert f"| {step} | " in printed
    times = json.loads(out.read_text())[str(ROOT / "src")]
    assert set(times) == set(startup.STEPS)
    assert all(len(seconds) == 1 and 0 < seconds[0] < 60 for seconds in times.values())
    assert set(Path(tempfile.gettempdir()).glob("lmsauth-startup-*")) == folders  # its data removed


@pytest.mark.bench
def test_a_folder_without_lmsauth_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as refused:
        startup.main([str(tmp_path)])
    assert refused.value.code == 2
