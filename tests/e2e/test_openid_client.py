"""node's openid-client 6 (a client no one here wrote) against a live server, in both
profiles: discovery, PKCE authorization, the code exchange with ``client_secret_basic`` (which
it form-url-encodes, RFC 6749 section 2.3.1), API calls, refresh and RFC 7009 revocation.

The Node side is ``tests/e2e/node/openid_client_flow.mjs``; the library is installed from the
lockfile beside it on first use (``npm ci``), so a fresh machine needs only node and npm."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lmsauth.settings import Profile, Settings
from tests.conftest import Directory, LiveServer
from tests.e2e.conftest import CALLBACK, ScriptedBrowser

NODE_PROJECT = Path(__file__).parent / "node"
SCRIPT = NODE_PROJECT / "openid_client_flow.mjs"
# Every character oauth4webapi's formUrlEncode changes: only RFC 6749 2.3.1 decoding lets it in.
SECRET = "openid-client_secret.with!odd~chars*'()-0123456789"


@pytest.fixture(scope="session")
def node_project() -> Path:
    """``npm ci`` once per machine (a lock keeps pytest-xdist workers from racing)."""
    npm = shutil.which("npm")
    assert npm is not None and shutil.which("node") is not None, (
        "node and npm are needed (Debian: nodejs npm)"
    )
    with open(NODE_PROJECT / "package.json", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (NODE_PROJECT / "node_modules" / "openid-client" / "package.json").exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_PROJECT,
                check=True,
                timeout=300,
            )
    return NODE_PROJECT


def node_step(project: Path, **arguments: Any) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(SCRIPT), json.dumps(arguments)], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(params=[Profile.canvas, Profile.strict], ids=["canvas", "strict"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return settings.model_copy(update={"profile": request.param})


def test_openid_client_code_flow_refresh_and_revocation(
    node_project: Path, live_server: LiveServer, directory: Directory, browser: ScriptedBrowser
) -> None:
    key = directory.key(redirect_uris=[CALLBACK], client_secret=SECRET)
    user = directory.user()
    common = {
        "issuer": live_server.url,
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "redirect_uri": CALLBACK,
        "api_url": f"{live_server.url}/api/v1/users/self",
    }
    started = node_step(node_project, step="start", **common)
    assert started["revocation_endpoint"] == f"{live_server.url}/login/oauth2/revoke"
    callback = browser.authorize(started["url"], user.login, user.password)
    assert callback.startswith(CALLBACK + "?code="), callback

    done = node_step(
        node_project,
        step="finish",
        callback_url=callback,
        verifier=started["verifier"],
        state=started["state"],
        **common,
    )
    assert done["token_type"].lower() == "bearer"
    assert done["expires_in"] == 3600
    assert done["first"] == {"status": 200, "body": done["first"]["body"]}
    assert done["first"]["body"]["id"] == user.id
    assert done["after_refresh"]["status"] == 200
    assert done["old_access"]["status"] == 401  # a refresh replaces the access token
    # The canvas profile keeps the refresh token; the strict profile rotates it.
    assert done["rotated"] is (live_server.settings.profile is Profile.strict)
    assert done["after_revocation"]["status"] == 401
    expected_refusal = (
        "invalid_grant" if live_server.settings.profile is Profile.strict else "invalid_request"
    )
    assert done["refresh_after_revocation"] == expected_refusal
