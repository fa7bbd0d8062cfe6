"""Commons runs alone: its own app factory, no Canvas code loaded, served at the root as
lor.instructure.com serves it, trusting Canvas only through the LTI shared secret."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from lmsauth.commons.app import create_commons_app
from lmsauth.settings import Settings
from tests.commons.support import FORM, Lti, accept_terms
from tests.conftest import TEST_SECRET_KEY, Directory, free_port


def test_commons_imports_no_other_service() -> None:
    code = (
        "import sys, lmsauth.commons.app, lmsauth.commons.commands; "
        "print(sorted(m for m in sys.modules if m.startswith(('lmsauth.canvas', 'lmsauth.identity', "
        "'lmsauth.dap', 'lmsauth.app', 'lmsauth.cli'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture
def commons_alone(tmp_path: Path, template_db: Path) -> Iterator[tuple[str, Lti]]:
    """``create_commons_app`` on a real port, serving Commons at the root path."""
    import shutil

    shutil.copy(template_db, tmp_path / "lmsauth.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path,
        secret_key=TEST_SECRET_KEY,
        public_url=url,
        commons_path="",
        cleanup_interval_seconds=3600,
    )
    lti = Lti.install(Directory(settings), settings)
    server = uvicorn.Server(
        uvicorn.Config(create_commons_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "commons did not start"
        time.sleep(0.02)
    try:
        yield url, lti
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_commons_alone_serves_the_launch_terms_and_sessions(commons_alone: tuple[str, Lti]) -> None:
    url, lti = commons_alone
    assert lti.launch_url == f"{url}/api/lti"
    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        launched = browser.post("/api/lti", content=lti.signed(), headers=FORM)
        assert launched.status_code == 303 and launched.headers["location"] == "/"
        assert "Path=/;" in launched.headers["set-cookie"]
        accept_terms(browser, lti)
        css = browser.get("/static/lmsauth.css")
        assert css.status_code == 200
    with httpx.Client(base_url=url) as script:
        created = script.post("/api/sessions", json={"jwt_token": lti.jwt()})
        assert created.status_code == 201, created.text
        sid = created.json()["sessionId"]
        assert script.get(f"/api/sessions/{sid}", headers={"X-Session-ID": sid}).status_code == 200
        assert script.get("/api/sessions/logout", headers={"X-Session-ID": sid}).status_code == 204
        assert script.get(f"/api/sessions/{sid}", headers={"X-Session-ID": sid}).status_code == 401
        assert script.get("/api/v1/users/self").status_code == 404  # no Canvas here


def test_full_server_refuses_commons_at_the_root_beside_canvas(settings: Settings) -> None:
    from lmsauth.app import create_app

    with pytest.raises(ValueError, match="only when it runs alone"):
        create_app(settings.model_copy(update={"commons_path": ""}))


def test_services_select_what_the_full_server_mounts(settings: Settings) -> None:
    from starlette.testclient import TestClient

    from lmsauth.app import create_app, parse_services

    assert parse_services("all") == parse_services("canvas,identity,dap,commons")
    with pytest.raises(ValueError, match="unknown services"):
        parse_services("canvas,nope")
    with TestClient(create_app(settings, services={"canvas"})) as canvas_only:
        assert canvas_only.post("/commons/api/sessions", json={"jwt_token": "x"}).status_code == 404
        assert canvas_only.get("/login/canvas").status_code == 200
    with TestClient(create_app(settings, services={"commons"})) as commons_only:
        assert commons_only.post("/commons/api/sessions", json={"jwt_token": "x"}).status_code == 401
        assert commons_only.get("/login/canvas").status_code == 404
