"""Real clients against a real emulator process, through the ``lmsauth_emulator`` fixture of
the pytest plugin (``lmsauth.testing``), as a user's test suite would use it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import oauthlib.oauth2.rfc6749.clients.base
import oauthlib.oauth2.rfc6749.parameters
import pytest
from requests_oauthlib import OAuth2Session

from lmsauth.testing import Emulator
from tests.commons.support import CSRF, form_fields
from tests.e2e.conftest import ScriptedBrowser
from tests.flows import log_in

pytestmark = pytest.mark.server
TABLES = ["access_tokens", "accounts", "courses", "developer_keys", "enrollments", "pseudonyms", "users"]
TABLE_LIST = "/dap/query/canvas/table"


def test_requests_oauthlib_refreshes_by_itself_after_the_hour(
    lmsauth_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library decides "expired" with its own time.time(); let it read the server's clock.
    shifted = SimpleNamespace(time=lmsauth_emulator.time)
    for module in (oauthlib.oauth2.rfc6749.clients.base, oauthlib.oauth2.rfc6749.parameters):
        monkeypatch.setattr(module, "time", shifted)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    base, key, user = lmsauth_emulator.url, lmsauth_emulator.developer_key, lmsauth_emulator.user
    saved: list[dict[str, object]] = []
    oauth = OAuth2Session(
        key.client_id,
        redirect_uri=key.redirect_uris[0],
        auto_refresh_url=f"{base}/login/oauth2/token",
        auto_refresh_kwargs={"client_id": key.client_id, "client_secret": key.client_secret},
        token_updater=saved.append,
    )
    url, state = oauth.authorization_url(f"{base}/login/oauth2/auth")
    callback = ScriptedBrowser(base).authorize(url, user.login, user.password)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    first = oauth.fetch_token(
        f"{base}/login/oauth2/token", authorization_response=callback, client_secret=key.client_secret
    )
    assert oauth.get(f"{base}/api/v1/users/self").status_code == 200

    lmsauth_emulator.advance_clock(3601)
    me = oauth.get(f"{base}/api/v1/users/self")
    assert me.status_code == 200, me.text
    assert me.json()["name"] == user.name
    assert len(saved) == 1 and saved[0]["access_token"] != first["access_token"]
    # The refresh really happened on the server, and the old token is refused there.
    calls = [(r["method"], r["path"], r["status"]) for r in lmsauth_emulator.requests(limit=2)]
    assert calls == [("GET", "/api/v1/users/self", 200), ("POST", "/login/oauth2/token", 200)]
    stale = httpx.get(
        f"{base}/api/v1/users/self", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert stale.status_code == 401


def _dap(
    emulator: Emulator, client: dict[str, str], cwd: os.PathLike[str]
) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DAP_")}
    env.update(
        DAP_TRACKING="false", DAP_CLIENT_ID=client["client_id"], DAP_CLIENT_SECRET=client["client_secret"]
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dap",
            "--base-url",
            emulator.url,
            "--non-interactive",
            "list",
            "--namespace",
            "canvas",
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def dap_client(lmsauth_emulator: Emulator) -> dict[str, str]:
    client: dict[str, str] = lmsauth_emulator.cli(
        "identity-client", "create", "--name", "Warehouse", "--principal", "inst-1", "--json"
    )
    return client


def test_dap_retries_two_rate_limited_table_lists(lmsauth_emulator: Emulator, dap_client, tmp_path) -> None:
    lmsauth_emulator.inject_fault(TABLE_LIST, method="GET", status=429, retry_after=1, count=2)
    result = _dap(lmsauth_emulator, dap_client, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == TABLES
    lists = [r for r in lmsauth_emulator.requests() if r["path"] == TABLE_LIST]
    assert [r["status"] for r in lists] == [200, 429, 429]  # newest first
    assert lists[1]["fault"] is not None and lists[1]["client_id"] == dap_client["client_id"]


def test_dap_gives_up_after_three_rate_limited_attempts(
    lmsauth_emulator: Emulator, dap_client, tmp_path
) -> None:
    fault = lmsauth_emulator.inject_fault(
        TABLE_LIST,
        method="GET",
        status=429,
        retry_after=1,
        count=4,
        message="Slow down: the table list is busy.",
    )
    result = _dap(lmsauth_emulator, dap_client, tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr  # errno.EIO, the CLI's operation error
    assert "Slow down: the table list is busy." in result.stdout + result.stderr
    assert [f["remaining"] for f in lmsauth_emulator.faults() if f["id"] == fault["id"]] == [1]
    assert [r["status"] for r in lmsauth_emulator.requests() if r["path"] == TABLE_LIST] == [429, 429, 429]


def _dap_snapshot(emulator: Emulator, client: dict[str, str], out: os.PathLike[str]) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DAP_")}
    env.update(
        DAP_TRACKING="false", DAP_CLIENT_ID=client["client_id"], DAP_CLIENT_SECRET=client["client_secret"]
    )
    command = [sys.executable, "-m", "dap", "--base-url", emulator.url, "--non-interactive", "snapshot"]
    command += ["--namespace", "canvas", "--table", "users", "--output-directory", str(out)]
    return subprocess.Popen(
        command, env=env, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


DATA = "/dap/query/canvas/table/users/data"


def test_dap_snapshot_retries_a_rate_limited_data_call(
    lmsauth_emulator: Emulator, dap_client, tmp_path
) -> None:
    lmsauth_emulator.inject_fault(DATA, method="POST", status=429, retry_after=1, count=1)
    snapshot = _dap_snapshot(lmsauth_emulator, dap_client, tmp_path)
    output, _ = snapshot.communicate(timeout=60)
    assert snapshot.returncode == 0, output
    assert [path.name.endswith(".json.gz") for path in tmp_path.rglob("*.gz")] == [True]
    posts = [r["status"] for r in lmsauth_emulator.requests() if r["path"] == DATA]
    assert posts == [202, 429]  # newest first: the retry after Retry-After got the job


def test_dap_snapshot_reports_an_object_url_that_expired_before_its_download(
    lmsauth_emulator: Emulator, dap_client, tmp_path
) -> None:
    # The download is held back while the emulator's clock moves past the URL's 15 minutes.
    lmsauth_emulator.inject_fault("/dap/files/*", method="GET", delay=4, count=1)
    snapshot = _dap_snapshot(lmsauth_emulator, dap_client, tmp_path)
    deadline = time.monotonic() + 30
    while not any(r["path"] == "/dap/object/url" for r in lmsauth_emulator.requests()):
        assert time.monotonic() < deadline and snapshot.poll() is None
        time.sleep(0.1)
    lmsauth_emulator.advance_clock(16 * 60)
    output, _ = snapshot.communicate(timeout=60)
    assert snapshot.returncode == 5, output  # errno.EIO, the CLI's operation error
    assert "403" in output
    downloads = [r["status"] for r in lmsauth_emulator.requests() if r["path"].startswith("/dap/files/")]
    assert downloads == [403]


def _commons_session(emulator: Emulator) -> str:
    """The README's chain: sign in, launch Commons from Canvas, accept its terms, then trade a
    Canvas JWT for a Commons session."""
    user = emulator.user
    with httpx.Client(base_url=emulator.url, follow_redirects=False) as browser:
        assert log_in(browser, user.login, user.password).status_code == 302
        tools = browser.get("/accounts/self/external_tools").text
        link = re.search(r'href="(/accounts/self/external_tools/\d+)"', tools)
        assert link, tools
        page = browser.get(link.group(1)).text
        action = re.search(r'action="([^"]+)"', page)
        assert action, page
        launched = browser.post(action.group(1).replace("&amp;", "&"), data=dict(form_fields(page)))
        assert launched.status_code == 303, launched.text
        terms = browser.get("/commons/terms")
        csrf = CSRF.search(terms.text)
        assert csrf, terms.text
        accepted = browser.post("/commons/terms", data={"csrf_token": csrf.group(1), "accept": "yes"})
        assert accepted.status_code == 303
    token = emulator.authorize(login=user.login)["access_token"]
    got = httpx.get(
        f"{emulator.url}/api/lti/accounts/self/jwt_token",
        params={"tool_launch_url": f"{emulator.url}/commons/api/lti"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert got.status_code == 200, got.text
    created = httpx.post(f"{emulator.url}/commons/api/sessions", json={"jwt_token": got.json()["jwt_token"]})
    assert created.status_code == 201, created.text
    sid: str = created.json()["sessionId"]
    return sid


def test_a_commons_session_expires_when_the_clock_passes_its_lifetime(lmsauth_emulator: Emulator) -> None:
    sid = _commons_session(lmsauth_emulator)
    url = f"{lmsauth_emulator.url}/commons/api/sessions/{sid}"
    assert httpx.get(url, headers={"X-Session-ID": sid}).status_code == 200
    live = lmsauth_emulator.tokens()["commons_sessions"]  # the launch's (the browser's) and ours
    assert {s["user"] for s in live} == {lmsauth_emulator.user.name}
    lmsauth_emulator.advance_clock(12 * 3600 - 60)  # a minute before its 12 hours are up
    assert httpx.get(url, headers={"X-Session-ID": sid}).status_code == 200
    lmsauth_emulator.advance_clock(61)
    expired = httpx.get(url, headers={"X-Session-ID": sid})
    assert expired.status_code == 401
    assert expired.json()["error"]["type"] == "invalid_session"
    assert lmsauth_emulator.tokens()["commons_sessions"] == []
    # The log shows the session's use but never its id.
    assert all(sid not in str(entry) for entry in lmsauth_emulator.requests(limit=100))
