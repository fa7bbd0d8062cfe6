"""The pytest plugin itself: registered for pytest, documented by the example in
``docs/emulator.md`` (which ``test_readme_example.py`` is, to the byte), and usable with a seed
of one's own."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest

from lmsauth.testing import start_emulator

ROOT = Path(__file__).resolve().parents[2]
SEED = """
[[users]]
login = "ops@example.edu"
password = "ops-password-0123"
name = "Olive Ops"

[[developer_keys]]
client_id = "10000000000077"
name = "Ops Dashboard"
client_secret = "ops-dashboard-secret-0123456789"
redirect_uris = ["urn:ietf:wg:oauth:2.0:oob"]
"""


def test_the_plugin_is_registered_for_pytest() -> None:
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "lmsauth"]
    assert [ep.value for ep in found] == ["lmsauth.testing"]


def test_the_documented_example_is_the_test_we_run() -> None:
    page = (ROOT / "docs/emulator.md").read_text()
    section = page.split("## The pytest plugin", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example, "no Python example in the pytest plugin's section of docs/emulator.md"
    assert example.group(1) == (ROOT / "tests/emulator/test_readme_example.py").read_text()
    lines = [line for line in example.group(1).splitlines() if line.strip()]
    assert len(lines) == 10


@pytest.mark.server
def test_an_emulator_from_a_seed_file_of_ones_own(tmp_path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    emulator = start_emulator(tmp_path / "data", seed)
    try:
        assert emulator.developer_key.client_id == "10000000000077"
        assert emulator.user.login == "ops@example.edu"
        result = emulator.flow()  # out-of-band: the code is read from Canvas's landing page
        assert result["token"]["user"]["name"] == "Olive Ops"
        me = httpx.get(
            f"{emulator.url}/api/v1/users/self",
            headers={"Authorization": f"Bearer {result['token']['access_token']}"},
        )
        assert me.status_code == 200
        assert len(emulator.tokens()["access_tokens"]) == 1
        emulator.load_seed(
            '[[users]]\nlogin = "late@example.edu"\npassword = "late-password-1"\nname = "L"\n'
        )
        emulator.advance_clock(10)
        emulator.reset()
        assert emulator.tokens()["access_tokens"] == []
        assert emulator.clock()["real_time"] and emulator.offset_seconds == 0
        emulator.authorize(login="late@example.edu")  # run-time seeds are part of the seeded state
    finally:
        emulator.stop()
    assert emulator.process is None
