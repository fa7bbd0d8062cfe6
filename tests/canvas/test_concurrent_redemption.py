"""Two requests redeem one code, or exchange one refresh token, at the same moment.

The race is made real: a rendezvous holds each request right after it has read the row (the
code with ``redeemed_at`` still empty, the refresh token with ``refresh_used_at`` still empty)
until the other has read it too, so neither has written when both decide. Only the
compare-and-set of the claim (``exchange.issue_from_code``, ``tokens.claim_refresh``) or the family
lock can then tell them apart.

On PostgreSQL the two transactions run side by side and the rendezvous waits for both. SQLite
admits one writing transaction at a time (``core.db``: ``BEGIN IMMEDIATE`` behind one lock per
process), so the second request cannot read until the first has committed: there the
rendezvous lets each request through alone, and the tests check that the serial order gives
the same answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from lmsauth.canvas import exchange as grant_data
from lmsauth.canvas import tokens
from lmsauth.canvas.models import AccessToken, AuthorizationCode
from lmsauth.settings import Profile, Settings
from tests.canvas.support import TOKEN, exchange, get_code, me, pkce_pair, refresh
from tests.conftest import Directory, Key, Person

CODE_REFUSED = {"error": "invalid_grant", "error_description": "authorization_code not found"}
REFRESH_REFUSED = {"error": "invalid_request", "error_description": "refresh_token not found"}
STRICT_REFRESH_REFUSED = {
    "error": "invalid_grant",
    "error_description": "refresh_token not found",
}  # RFC 6749 5.2


class Rendezvous:
    """Holds each of the two racing requests, when it reaches it, until the other has arrived
    too (on SQLite, see above, neither waits). Requests after the race pass straight through."""

    RACERS = 2

    def __init__(self, settings: Settings) -> None:
        self.waits = not settings.resolved_database_url.startswith("sqlite")
        self.arrived = 0
        self._barrier: asyncio.Barrier | None = None

    async def wait(self) -> None:
        self.arrived += 1
        if not self.waits or self.arrived > self.RACERS:
            return
        if self._barrier is None:  # made in the app's event loop
            self._barrier = asyncio.Barrier(self.RACERS)
        try:
            async with asyncio.timeout(30):  # a deadlock guard, not a measurement
                await self._barrier.wait()
        except TimeoutError:
            raise AssertionError("the other request never read the row: something serialises them") from None


def pause_after(
    monkeypatch: pytest.MonkeyPatch, name: str, rendezvous: Rendezvous, module: ModuleType = tokens
) -> None:
    """``<module>.<name>`` then the rendezvous (the token endpoint calls it through the module)."""
    original: Callable[..., Any] = getattr(module, name)

    async def then_wait(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        await rendezvous.wait()
        return result

    monkeypatch.setattr(module, name, then_wait)


def at_once(client: TestClient, *forms: dict[str, str]) -> list[httpx.Response]:
    """One POST to the token endpoint per form, all at once, in the app's own event loop."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return list(await asyncio.gather(*(http.post(TOKEN, data=form) for form in forms)))

    assert client.portal is not None
    responses: list[httpx.Response] = client.portal.call(send)
    return responses


def split(responses: list[httpx.Response]) -> tuple[httpx.Response, httpx.Response]:
    """(the one success, the one refusal)."""
    assert sorted(response.status_code for response in responses) == [200, 400], [
        response.text for response in responses
    ]
    won, lost = sorted(responses, key=lambda response: response.status_code)
    return won, lost


def tokens_of(directory: Directory) -> list[AccessToken]:
    return [row for (row,) in directory.query(select(AccessToken).order_by(AccessToken.id))]


# ---------------------------------------------------------------- a code


def test_a_code_redeemed_twice_at_once_succeeds_once_and_the_reuse_revokes_it(
    client: TestClient,
    settings: Settings,
    directory: Directory,
    key: Key,
    user: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 6749 section 4.1.2: one token per code; the second presentation is refused as an
    unknown code and revokes what the first was given, whichever of the two came first."""
    code = get_code(client, key, user)
    rendezvous = Rendezvous(settings)
    pause_after(monkeypatch, "find_code", rendezvous, module=grant_data)
    form = {
        "grant_type": "authorization_code",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "code": code,
        "redirect_uri": key.redirect_uris[0],
    }
    won, lost = split(at_once(client, form, form))
    assert rendezvous.arrived == Rendezvous.RACERS
    assert lost.json() == CODE_REFUSED
    body = won.json()
    assert me(client, body["access_token"]).status_code == 401
    assert refresh(client, key, body["refresh_token"]).json() == REFRESH_REFUSED
    rows = tokens_of(directory)
    assert [row.workflow_state for row in rows] == ["deleted"]
    ((redeemed_at,),) = directory.query(select(AuthorizationCode.redeemed_at))
    assert redeemed_at is not None


# ---------------------------------------------------------------- a strict refresh token


def strict_grant(client: TestClient, key: Key, user: Person) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, key, code, code_verifier=verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh_form(key: Key, refresh_token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "refresh_token": refresh_token,
    }


def test_one_refresh_token_exchanged_twice_at_once_rotates_once_without_grace(
    app_client: Callable[..., TestClient],
    settings: Settings,
    directory: Directory,
    key: Key,
    user: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both requests found the row before either took the family lock. Exactly one rotation;
    with no grace period the other presentation is reuse, so the family goes, the winner's
    new tokens included (README, "strict profile")."""
    client = app_client(profile=Profile.strict, refresh_reuse_grace_seconds=0)
    first = strict_grant(client, key, user)
    rendezvous = Rendezvous(settings)
    pause_after(monkeypatch, "find_refresh_row", rendezvous)
    form = refresh_form(key, first["refresh_token"])
    won, lost = split(at_once(client, form, form))
    assert rendezvous.arrived == Rendezvous.RACERS
    assert lost.json() == STRICT_REFRESH_REFUSED
    root, *successors = tokens_of(directory)
    assert len(successors) == 1  # one rotation of the used token
    assert root.refresh_used_at is not None
    assert successors[0].family_id == root.id
    assert me(client, won.json()["access_token"]).status_code == 401
    assert refresh(client, key, won.json()["refresh_token"]).json() == STRICT_REFRESH_REFUSED
    assert [row.workflow_state for row in tokens_of(directory)] == ["deleted", "deleted"]


def test_one_refresh_token_exchanged_twice_at_once_within_grace_keeps_one_family(
    strict_client: TestClient,
    settings: Settings,
    directory: Directory,
    key: Key,
    user: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Within the grace period the second presentation is a client racing itself: another
    rotation of the same family, both answers valid; the token was still exchanged once."""
    first = strict_grant(strict_client, key, user)
    rendezvous = Rendezvous(settings)
    pause_after(monkeypatch, "find_refresh_row", rendezvous)
    form = refresh_form(key, first["refresh_token"])
    responses = at_once(strict_client, form, form)
    assert [response.status_code for response in responses] == [200, 200]
    assert rendezvous.arrived == Rendezvous.RACERS
    root, *successors = tokens_of(directory)
    assert len(successors) == 2
    assert all(row.family_id == root.id and row.workflow_state == "active" for row in successors)
    assert root.workflow_state == "deleted" and root.refresh_used_at is not None
    for response in responses:
        assert me(strict_client, response.json()["access_token"]).status_code == 200


def test_the_refresh_claim_alone_lets_one_rotation_through(
    app_client: Callable[..., TestClient],
    settings: Settings,
    directory: Directory,
    key: Key,
    user: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the family lock, both requests read the row with ``refresh_used_at`` empty and
    both try to claim it: the compare-and-set must let exactly one rotate."""
    client = app_client(profile=Profile.strict, refresh_reuse_grace_seconds=0)
    first = strict_grant(client, key, user)
    rendezvous = Rendezvous(settings)

    async def reread_without_lock(session: Any, row: AccessToken) -> None:
        await session.refresh(row)
        await rendezvous.wait()

    monkeypatch.setattr(tokens, "lock_family", reread_without_lock)
    form = refresh_form(key, first["refresh_token"])
    won, lost = split(at_once(client, form, form))
    assert rendezvous.arrived == Rendezvous.RACERS
    assert lost.json() == STRICT_REFRESH_REFUSED
    root, *successors = tokens_of(directory)
    assert len(successors) == 1
    assert me(client, won.json()["access_token"]).status_code == 401
    assert [row.workflow_state for row in (root, *successors)] == ["deleted", "deleted"]
