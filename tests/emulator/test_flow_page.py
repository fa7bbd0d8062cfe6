"""The page's one-click authorization-code flow, on a real port (it calls the server over HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from lmsauth.app import create_app
from tests.conftest import free_port

DEMO_ID = "10000000000001"


@pytest.fixture
def live_emulator(emulator_settings) -> Iterator[str]:
    port = free_port()
    settings = emulator_settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the emulator did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_one_click_flow_shows_each_step_and_each_token_decoded(live_emulator) -> None:
    page = httpx.get(f"{live_emulator}/_emulator/")
    assert f'<option value="{DEMO_ID}">' in page.text
    done = httpx.post(
        f"{live_emulator}/_emulator/flow",
        data={"client_id": DEMO_ID, "login": "student@example.edu"},
        headers={"Origin": live_emulator},
        timeout=30,
    )
    assert done.status_code == 200, done.text
    text = done.text
    for step in (
        "The client sends the browser to the authorization endpoint",
        "The person signs in",
        "The person authorizes the application",
        "The client trades the code for tokens",
        "The client calls the API with the access token",
    ):
        assert step in text
    assert "student-password" not in text  # the password is never shown
    assert text.count("the server keeps only their SHA-256 digest") == 3  # code, access, refresh
    assert "&#34;redeemed&#34;: false" in text and "&#34;client_id&#34;: &#34;10000000000001&#34;" in text
    assert "<script" not in text


def test_the_flow_as_json_and_for_a_trusted_key(live_emulator) -> None:
    chosen = {"client_id": "10000000000002", "login": "teacher@example.edu"}
    result = httpx.post(f"{live_emulator}/_emulator/flow", json=chosen).json()
    titles = [step["title"] for step in result["steps"]]
    assert "The person authorizes the application" not in titles  # trusted: no consent page
    assert result["token"]["user"]["name"] == "Terry Teacher"
    kinds = [item["kind"] for item in result["decoded"]]
    assert kinds == ["code", "access_token", "refresh_token"]
    assert result["decoded"][1]["record"]["expires_at"]
    access = result["token"]["access_token"]
    me = httpx.get(f"{live_emulator}/api/v1/users/self", headers={"Authorization": f"Bearer {access}"})
    assert me.json()["name"] == "Terry Teacher"
    # The flow went through the real endpoints: it is in the traffic log, with secrets masked.
    log = httpx.get(f"{live_emulator}/_emulator/requests?limit=20").json()["requests"]
    token_call = next(e for e in log if e["path"] == "/login/oauth2/token")
    assert token_call["client_id"] == "10000000000002" and token_call["status"] == 200
    assert all(item["value"] not in str(log) for item in result["decoded"])


def test_a_flow_that_meets_a_fault_shows_where_it_stopped(live_emulator) -> None:
    httpx.post(f"{live_emulator}/_emulator/faults", json={"path": "/login/oauth2/token", "status": 503})
    failed = httpx.post(f"{live_emulator}/_emulator/flow", json={})
    assert failed.status_code == 502
    assert failed.json()["error"]["message"] == "the token endpoint answered 503"
    assert failed.json()["steps"][-1]["json"]["error"] == "temporarily_unavailable"


def test_the_flow_needs_a_seeded_key_and_user(live_emulator) -> None:
    refused = httpx.post(f"{live_emulator}/_emulator/flow", json={"client_id": "999"})
    assert refused.status_code == 400
