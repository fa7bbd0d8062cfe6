"""``LMSAUTH_GC_FREEZE``: the server moves its start-up heap out of the collector's sight."""

from __future__ import annotations

import gc

from starlette.testclient import TestClient

from lmsauth.app import create_app
from lmsauth.settings import Settings


def test_the_start_up_heap_is_frozen_only_when_asked(settings: Settings) -> None:
    gc.unfreeze()
    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(settings.model_copy(update={"gc_freeze": True}))) as client:
            assert gc.get_freeze_count() > 0
            assert client.get("/healthz").status_code == 200
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
