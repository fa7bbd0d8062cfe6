"""Fixtures for the Commons tests: a consumer and a Canvas tool for it, a user who can sign in
to Canvas, cheap password hashing, and a template database that already has a signing key."""

from __future__ import annotations

import pytest

from lmsauth.settings import Settings
from tests.commons.support import Lti
from tests.conftest import Directory, LiveServer


@pytest.fixture
def lti(directory: Directory, settings: Settings) -> Lti:
    """Commons at http://testserver/commons, installed in Canvas as a public tool."""
    return Lti.install(directory, settings)


@pytest.fixture
def live_lti(live_server: LiveServer) -> Lti:
    return Lti.install(Directory(live_server.settings), live_server.settings)
