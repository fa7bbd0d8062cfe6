"""The emulator in-process (Starlette's TestClient), for the control API's own rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from lmsauth.app import create_app
from lmsauth.settings import Settings

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)


@pytest.fixture
def emulator_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"emulator": True, "emulator_seed": "demo"})


def emulator_client(settings: Settings, client: tuple[str, int] = LOOPBACK) -> TestClient:
    return TestClient(
        create_app(settings), base_url="http://testserver", follow_redirects=False, client=client
    )


@pytest.fixture
def emulator(emulator_settings: Settings) -> Iterator[TestClient]:
    """The whole server in emulator mode with the demo seed, called from loopback."""
    with emulator_client(emulator_settings) as test_client:
        yield test_client
