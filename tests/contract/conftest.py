"""What the contract tests share: the published OpenAPI document loaded by schemathesis, a
check that a real response matches it, and one live server with real credentials for fuzzing.

The fuzz server lives for the whole module (hundreds of requests against one database), so it
cannot use ``tests/conftest.py``'s per-test ``live_server``; it is built the same way.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lmsauth.app import create_app, openapi_json
from lmsauth.canvas.courses import service as course_service
from lmsauth.settings import Settings
from tests.commons.support import Lti, launch_and_accept
from tests.conftest import TEST_SECRET_KEY, Directory, free_port, run
from tests.identity.helpers import access_token as ids_access_token
from tests.identity.helpers import basic, make_client

DOCUMENT: dict[str, Any] = json.loads(openapi_json())
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "')


def conforms(response: httpx.Response, method: str, path: str) -> None:
    """``response`` (to ``method`` on the documented ``path`` template) has a documented status,
    content type, headers and body schema, and shows no stack trace."""
    operation = SCHEMA[path][method.upper()]
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    match = re.fullmatch(pattern, response.request.url.path)
    assert match, (path, response.request.url.path)
    case = operation.Case(method=method.upper(), path_parameters=match.groupdict())
    case.validate_response(response, checks=CONFORMANCE)
    assert not any(marker in response.text for marker in TRACEBACK_MARKERS), response.text


@dataclass
class FuzzTarget:
    """A running server and credentials that its endpoints accept."""

    url: str
    settings: Settings
    canvas_token: str
    dap_token: str
    identity_basic: str
    commons_session: str
    client_id: str
    client_secret: str
    redirect_uri: str
    tool_launch_url: str


def _serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=int(settings.public_url.rsplit(":", 1)[1]),
        log_level="critical",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fuzz server did not start")
        time.sleep(0.02)
    return server, thread


def _course_of(directory: Directory, user_id: int) -> None:
    """Course 1, with the fuzzing token's user as its student: course paths get past 404."""

    async def work(session: Any) -> None:
        course = await course_service.create_course(session, name="Fuzzing 101", publish=True)
        await course_service.enroll(session, course, user_id, "StudentEnrollment")

    run(directory._in_session(work))


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[FuzzTarget]:
    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copy(template_db, folder / "lmsauth.db")
    # Always its own SQLite copy, whatever backend the rest of the run uses: named outright, so
    # no LMSAUTH_* variable of the environment can point it elsewhere.
    settings = Settings(
        data_dir=folder,
        database_url=f"sqlite+aiosqlite:///{(folder / 'lmsauth.db').resolve()}",
        redis_url=None,
        secret_key=TEST_SECRET_KEY,
        public_url=f"http://127.0.0.1:{free_port()}",
        cleanup_interval_seconds=3600,
    )
    server, thread = _serve(settings)
    try:
        lti = Lti.install(Directory(settings), settings)
        _course_of(Directory(settings), lti.user.id)
        identity = make_client(settings)
        with httpx.Client(base_url=settings.public_url, follow_redirects=False, timeout=30) as browser:
            canvas_token = lti.access_token(browser)
            launch_and_accept(browser, lti)
            created = browser.post(f"{settings.commons_path}/api/sessions", json={"jwt_token": lti.jwt()})
            assert created.status_code == 201, created.text
            dap_token = ids_access_token(browser, identity)
        yield FuzzTarget(
            url=settings.public_url,
            settings=settings,
            canvas_token=canvas_token,
            dap_token=dap_token,
            identity_basic=basic(identity.client_id, identity.client_secret),
            commons_session=created.json()["sessionId"],
            client_id=lti.key.client_id,
            client_secret=lti.key.client_secret,
            redirect_uri=lti.key.redirect_uris[0],
            tool_launch_url=lti.launch_url,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def lti(directory: Directory, settings: Settings) -> Lti:
    """Commons at http://testserver/commons, installed in Canvas as a public tool."""
    return Lti.install(directory, settings)
