"""The periodic clean-up (``tokens.remove_expired``): rows that can never be used again go,
everything still usable (including a soft-expired but refreshable token) stays."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from lmsauth.canvas import tokens
from lmsauth.canvas.models import AccessToken, AuthorizationCode, BrowserSession
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.settings import Settings
from tests.canvas.support import (
    TOKEN,
    count,
    exchange,
    get_code,
    issue_tokens,
    me,
    pkce_pair,
    refresh,
    signed_in,
)
from tests.conftest import Directory, Key


def sweep(settings: Settings) -> dict[str, int]:
    async def work() -> dict[str, int]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                return await tokens.remove_expired(session)
        finally:
            await db.dispose()

    result: dict[str, Any] = asyncio.run(work())
    return result


def test_nothing_to_remove(settings: Settings) -> None:
    assert sweep(settings) == {"authorization_codes": 0, "browser_sessions": 0, "access_tokens": 0}


def test_remove_expired_keeps_what_is_still_usable(client, directory: Directory, settings: Settings) -> None:
    key, user = directory.key(), directory.user()
    anonymous = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    assert anonymous.get("/login/canvas").status_code == 200  # no row: its state is in a cookie

    unredeemed = get_code(client, key, user)  # signs ``client`` in (12 hours)
    live = issue_tokens(client, key, user)
    revoked = issue_tokens(client, key, user)
    assert (
        client.delete(TOKEN, headers={"Authorization": f"Bearer {revoked['access_token']}"}).status_code
        == 200
    )

    assert sweep(settings) == {"authorization_codes": 0, "browser_sessions": 0, "access_tokens": 1}
    assert me(client, live["access_token"]).status_code == 200

    clock.advance(3601)
    fresh_code = get_code(client, key, user)
    counts = sweep(settings)
    assert counts == {"authorization_codes": 3, "browser_sessions": 0, "access_tokens": 0}

    # What is left still works: the new code, the signed-in session, the (soft-expired) token.
    assert count(directory, AuthorizationCode) == 1
    assert exchange(client, key, fresh_code).status_code == 200
    assert exchange(client, key, unredeemed).status_code == 400
    assert signed_in(client)
    assert not signed_in(anonymous)
    assert me(client, live["access_token"]).status_code == 401
    renewed = refresh(client, key, live["refresh_token"])
    assert renewed.status_code == 200
    assert me(client, renewed.json()["access_token"]).status_code == 200


def test_hard_expired_public_client_tokens_are_removed(
    client, directory: Directory, settings: Settings
) -> None:
    public = directory.key(client_type="public", name="Public App")
    confidential, user = directory.key(), directory.user()
    verifier, challenge = pkce_pair()
    code = get_code(client, public, user, code_challenge=challenge, code_challenge_method="S256")
    assert (
        exchange(
            client, Key(public.client_id, "", public.redirect_uris), code, code_verifier=verifier
        ).status_code
        == 200
    )
    kept = issue_tokens(client, confidential, user)
    clock.advance(120 * 60 - 5)
    assert sweep(settings)["access_tokens"] == 0
    clock.advance(10)
    assert sweep(settings)["access_tokens"] == 1
    remaining = directory.query(select(AccessToken.developer_key_id))
    assert len(remaining) == 1
    assert refresh(client, confidential, kept["refresh_token"]).status_code == 200


def test_expired_signed_in_sessions_are_removed(client, directory: Directory, settings: Settings) -> None:
    from tests.canvas.support import sign_in

    user = directory.user()
    sign_in(client, user)
    clock.advance(12 * 3600 - 5)
    assert sweep(settings)["browser_sessions"] == 0
    assert signed_in(client)
    clock.advance(10)
    assert not signed_in(client)
    assert sweep(settings)["browser_sessions"] >= 1
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 0
