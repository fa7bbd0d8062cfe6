"""The issue's "done when": a user copies the README's example into their own project, with
the seed named in their pytest ini, runs pytest, and it passes. Run as its own pytest process
in a fresh folder, with the plugin found through its ``pytest11`` entry point only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator.test_plugin import ROOT

SEED = """
[[users]]
login = "sam@school.example"
password = "sam-password-0123"
name = "Sam Student"

[[developer_keys]]
client_id = "10000000000042"
name = "Gradebook Sync"
client_secret = "gradebook-sync-secret-0123456789"
redirect_uris = ["https://gradebook.example/oauth/callback"]
"""


@pytest.mark.server
def test_the_readme_example_passes_in_a_users_project(tmp_path: Path) -> None:
    project = tmp_path / "their-project"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\nlmsauth_seed = tests/lmsauth_seed.toml\n")
    (project / "tests" / "lmsauth_seed.toml").write_text(SEED)
    example = (ROOT / "tests/emulator/test_readme_example.py").read_text()
    (project / "tests" / "test_canvas_sync.py").write_text(example)
    (project / "tests" / "test_their_seed.py").write_text(
        "def test_the_ini_seed_is_loaded(lmsauth_emulator):\n"
        "    assert lmsauth_emulator.developer_key.client_id == '10000000000042'\n"
        "    assert lmsauth_emulator.authorize()['user']['name'] == 'Sam Student'\n"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST_", "LMSAUTH_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
