"""Fixtures of the LTI Advantage service tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lmsauth.settings import Settings
from tests.canvas.lti.support import JwksServer, LtiWorld


@pytest.fixture
def world(settings: Settings) -> LtiWorld:
    return LtiWorld(settings)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server
