"""Real clients over HTTP: requests through every row of spec 11.2, and canvasapi with a manual
token, which has no 1-hour expiry but does end at its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from canvasapi import Canvas
from canvasapi.exceptions import InvalidAccessToken

from lmsauth.core import clock
from tests.canvas.access_tokens.support import NOT_FOUND, UNAUTHORIZED, manual_token, token_rows
from tests.conftest import Directory, LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")


def test_requests_through_every_row_of_the_access_tokens_api(
    live_server: LiveServer, directory: Directory
) -> None:
    person = directory.user(login="pat@example.edu", name="Pat Teacher")
    other = directory.user(login="sam@example.edu", name="Sam Student")
    theirs = manual_token(directory, other, "Sam's")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {manual_token(directory, person, 'Bootstrap')}"
    base = f"{live_server.url}/api/v1/users"

    made = api.post(f"{base}/self/tokens", data={"token[purpose]": "Sync", "token[expires_at]": "2999-01-01"})
    assert made.status_code == 200
    body = made.json()
    token, token_id = body["visible_token"], body["id"]
    assert body["expires_at"] == "2999-01-01T00:00:00Z"

    listed = api.get(f"{base}/self/user_generated_tokens", params={"per_page": 1})
    assert [row["purpose"] for row in listed.json()] == ["Bootstrap"]
    assert listed.links["next"]["url"].startswith(f"{base}/self/user_generated_tokens?page=2")
    second = api.get(listed.links["next"]["url"])
    assert [row["visible_token"] for row in second.json()] == [token[:5] + "..."]

    assert api.get(f"{base}/self/tokens/{token_id}").json()["purpose"] == "Sync"
    assert api.get(f"{base}/self/tokens/{token[:5]}").json()["id"] == token_id

    renewed = api.put(f"{base}/self/tokens/{token[:5]}", data={"token[regenerate]": "1"}).json()
    assert renewed["id"] == token_id and renewed["visible_token"] != token
    moved = api.put(f"{base}/self/tokens/{token_id}", data={"token[expires_at]": ""}).json()
    assert moved["expires_at"] is None

    gone = api.delete(f"{base}/self/tokens/{token_id}")
    assert gone.status_code == 200 and gone.json()["workflow_state"] == "deleted"
    new_text = renewed["visible_token"]
    assert requests.get(f"{base}/self", headers={"Authorization": f"Bearer {new_text}"}).status_code == 401

    before = token_rows(directory)
    assert api.get(f"{base}/self/tokens/{token_id}").json() == NOT_FOUND
    assert api.post(f"{base}/self/tokens", data={}).json() == [{"message": "token[purpose] is missing"}]
    assert api.get(f"{base}/{other.id}/tokens/{theirs[:5]}").json() == UNAUTHORIZED
    assert api.delete(f"{base}/{other.id}/tokens/{theirs[:5]}").json() == UNAUTHORIZED
    assert token_rows(directory) == before


def test_canvasapi_with_a_manual_token(live_server: LiveServer, directory: Directory) -> None:
    person = directory.user(login="pat@example.edu", name="Pat Teacher")
    forever = manual_token(directory, person, "No expiry")
    dated = manual_token(
        directory, person, "Two days", expires_at=(clock.now() + timedelta(days=2)).isoformat()
    )
    assert Canvas(live_server.url, forever).get_current_user().name == "Pat Teacher"
    clock.advance(3601)  # an OAuth token would be past its hour now
    assert Canvas(live_server.url, forever).get_current_user().name == "Pat Teacher"
    assert Canvas(live_server.url, dated).get_current_user().name == "Pat Teacher"
    clock.advance(2 * 86400)
    with pytest.raises(InvalidAccessToken):
        Canvas(live_server.url, dated).get_current_user()
    assert Canvas(live_server.url, forever).get_current_user().name == "Pat Teacher"
