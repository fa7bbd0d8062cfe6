"""The strict profile's refresh tokens (RFC 9700 section 4.14.2): every refresh rotates, a
rotated token presented again revokes its whole family, a short grace period lets a client
racing itself (or retrying a lost answer) through, and concurrent refreshes cannot fork a
family outside those rules. The canvas profile keeps Canvas's non-rotating refresh."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from pydantic import ValidationError
from sqlalchemy import select
from starlette.testclient import TestClient

import lmsauth.models  # noqa: F401  (registers every table)
from lmsauth.canvas import tokens
from lmsauth.canvas.models import AccessToken
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.migrations import alembic_config, upgrade
from lmsauth.settings import Profile, Settings
from tests.canvas.support import TOKEN, exchange, get_code, me, pkce_pair, refresh
from tests.canvas.test_cleanup import sweep
from tests.conftest import TEST_DATABASE_URL, TEST_SECRET_KEY, Directory, Key, Person, run
from tests.contract.conftest import conforms

# RFC 6749 section 5.2 in the strict profile (Canvas says invalid_request).
NOT_FOUND = {"error": "invalid_grant", "error_description": "refresh_token not found"}
GRACE = 10.0  # the default LMSAUTH_REFRESH_REUSE_GRACE_SECONDS


def strict_tokens(client: TestClient, key: Key, user: Person) -> tuple[str, dict[str, Any]]:
    """The strict flow (PKCE S256) up to the token response: (code, body)."""
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, key, code, code_verifier=verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return code, body


def rotated(client: TestClient, key: Key, refresh_token: str) -> dict[str, Any]:
    response = refresh(client, key, refresh_token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response) -> bool:
    """The answer to an unknown refresh token, byte for byte."""
    return (
        response.status_code == 400
        and response.content == b'{"error":"invalid_grant","error_description":"refresh_token not found"}'
    )


def rows(directory: Directory) -> list[AccessToken]:
    return [row for (row,) in directory.query(select(AccessToken).order_by(AccessToken.id))]


def active(directory: Directory) -> int:
    return sum(row.workflow_state == "active" for row in rows(directory))


# ---------------------------------------------------------------- rotation


def test_refresh_rotates_and_answers_the_new_refresh_token(strict_client, key: Key, user: Person) -> None:
    _, first = strict_tokens(strict_client, key, user)
    response = refresh(strict_client, key, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    conforms(response, "post", "/login/oauth2/token")
    second = response.json()
    assert set(second) == {
        "access_token",
        "token_type",
        "user",
        "canvas_region",
        "refresh_token",
        "expires_in",
    }
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 3600
    assert me(strict_client, second["access_token"]).status_code == 200
    assert me(strict_client, first["access_token"]).status_code == 401
    # The new refresh token rotates in its turn.
    third = rotated(strict_client, key, second["refresh_token"])
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert me(strict_client, third["access_token"]).status_code == 200


def test_rotation_keeps_one_family(strict_client, directory: Directory, key: Key, user: Person) -> None:
    _, first = strict_tokens(strict_client, key, user)
    second = rotated(strict_client, key, first["refresh_token"])
    rotated(strict_client, key, second["refresh_token"])
    root, middle, newest = rows(directory)
    assert (root.family_id, middle.family_id, newest.family_id) == (None, root.id, root.id)
    assert [row.workflow_state for row in (root, middle, newest)] == ["deleted", "deleted", "active"]
    assert root.refresh_used_at is not None and middle.refresh_used_at is not None
    assert newest.refresh_used_at is None
    assert root.authorization_code_id is not None
    assert newest.authorization_code_id == root.authorization_code_id
    assert newest.scopes == root.scopes and newest.purpose == root.purpose


def test_a_rotated_token_is_refused_after_the_grace_period(strict_client, key: Key, user: Person) -> None:
    _, first = strict_tokens(strict_client, key, user)
    rotated(strict_client, key, first["refresh_token"])
    clock.advance(GRACE + 1)
    assert refused(refresh(strict_client, key, first["refresh_token"]))


# ---------------------------------------------------------------- reuse detection


def test_reuse_after_the_grace_period_revokes_the_family(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    _, first = strict_tokens(strict_client, key, user)
    second = rotated(strict_client, key, first["refresh_token"])
    clock.advance(60)
    third = rotated(strict_client, key, second["refresh_token"])
    assert me(strict_client, third["access_token"]).status_code == 200

    clock.advance(GRACE + 1)
    assert refused(refresh(strict_client, key, second["refresh_token"]))
    # The newest tokens, held by whoever rotated last, stop working too.
    revoked = me(strict_client, third["access_token"])
    assert revoked.status_code == 401
    assert revoked.json() == {"errors": [{"message": "Invalid access token."}]}
    assert refused(refresh(strict_client, key, third["refresh_token"]))
    assert active(directory) == 0


def test_reuse_of_the_first_token_revokes_a_long_chain(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    _, first = strict_tokens(strict_client, key, user)
    current = first
    for _ in range(3):
        clock.advance(3601)
        current = rotated(strict_client, key, current["refresh_token"])
    assert refused(refresh(strict_client, key, first["refresh_token"]))
    assert me(strict_client, current["access_token"]).status_code == 401
    assert refused(refresh(strict_client, key, current["refresh_token"]))
    assert active(directory) == 0


def test_reuse_does_not_touch_other_grants(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    _, stolen = strict_tokens(strict_client, key, user)
    _, other = strict_tokens(strict_client, key, user)
    rotated(strict_client, key, stolen["refresh_token"])
    clock.advance(GRACE + 1)
    assert refused(refresh(strict_client, key, stolen["refresh_token"]))
    assert me(strict_client, other["access_token"]).status_code == 200
    assert (
        me(strict_client, rotated(strict_client, key, other["refresh_token"])["access_token"]).status_code
        == 200
    )


def test_a_used_token_of_another_client_is_refused_without_revoking(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    _, first = strict_tokens(strict_client, key, user)
    second = rotated(strict_client, key, first["refresh_token"])
    clock.advance(GRACE + 1)
    stranger = directory.key(name="Other")
    response = refresh(strict_client, stranger, first["refresh_token"])
    assert response.json() == {"error": "invalid_grant", "error_description": "incorrect client"}
    assert me(strict_client, second["access_token"]).status_code == 200


# ---------------------------------------------------------------- the grace period


def test_reuse_within_the_grace_period_rotates_again_without_revoking(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    # Frozen: on a running clock, 1 s short of the grace period leaves only 1 s for the
    # requests in between, which a loaded CI worker has overrun.
    clock.freeze()
    _, first = strict_tokens(strict_client, key, user)
    one = rotated(strict_client, key, first["refresh_token"])
    clock.advance(GRACE - 1)
    other = rotated(strict_client, key, first["refresh_token"])
    assert other["refresh_token"] != one["refresh_token"]
    assert other["access_token"] != one["access_token"]
    # Both answers work: the client may have kept either.
    assert me(strict_client, one["access_token"]).status_code == 200
    assert me(strict_client, other["access_token"]).status_code == 200
    assert me(strict_client, first["access_token"]).status_code == 401
    assert (
        me(strict_client, rotated(strict_client, key, other["refresh_token"])["access_token"]).status_code
        == 200
    )
    assert (
        me(strict_client, rotated(strict_client, key, one["refresh_token"])["access_token"]).status_code
        == 200
    )
    family = {row.family_id for row in rows(directory)[1:]}
    assert family == {rows(directory)[0].id}


def test_the_grace_period_counts_from_the_first_use(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    clock.freeze()  # the margins below are exact
    _, first = strict_tokens(strict_client, key, user)
    one = rotated(strict_client, key, first["refresh_token"])
    clock.advance(GRACE * 0.6)
    rotated(strict_client, key, first["refresh_token"])
    clock.advance(GRACE * 0.6)  # within 10 s of the second use, but not of the first
    assert refused(refresh(strict_client, key, first["refresh_token"]))
    assert me(strict_client, one["access_token"]).status_code == 401
    assert active(directory) == 0


def test_no_grace_for_a_token_older_than_the_latest_rotation(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    _, first = strict_tokens(strict_client, key, user)
    second = rotated(strict_client, key, first["refresh_token"])
    clock.advance(1)
    third = rotated(strict_client, key, second["refresh_token"])
    clock.advance(1)
    assert refused(refresh(strict_client, key, first["refresh_token"]))
    assert me(strict_client, third["access_token"]).status_code == 401
    assert active(directory) == 0


def test_no_grace_once_the_family_is_revoked(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    _, first = strict_tokens(strict_client, key, user)
    second = rotated(strict_client, key, first["refresh_token"])
    assert (
        strict_client.delete(TOKEN, headers={"Authorization": f"Bearer {second['access_token']}"}).json()
        == {}
    )
    assert refused(refresh(strict_client, key, first["refresh_token"]))
    assert active(directory) == 0


def test_zero_grace_makes_any_second_presentation_a_reuse(
    app_client: Callable[..., TestClient], directory: Directory, key: Key, user: Person
) -> None:
    client = app_client(profile=Profile.strict, refresh_reuse_grace_seconds=0)
    _, first = strict_tokens(client, key, user)
    second = rotated(client, key, first["refresh_token"])
    assert refused(refresh(client, key, first["refresh_token"]))
    assert me(client, second["access_token"]).status_code == 401


def test_a_longer_grace_period_is_a_setting(
    app_client: Callable[..., TestClient], directory: Directory, key: Key, user: Person
) -> None:
    client = app_client(profile=Profile.strict, refresh_reuse_grace_seconds=60)
    _, first = strict_tokens(client, key, user)
    clock.freeze()  # 1 s short of the grace period, exactly
    one = rotated(client, key, first["refresh_token"])
    clock.advance(59)
    rotated(client, key, first["refresh_token"])
    assert me(client, one["access_token"]).status_code == 200


@pytest.mark.parametrize("value", [-1, 301])
def test_the_grace_period_is_bounded(value: float) -> None:
    with pytest.raises(ValidationError):
        Settings(refresh_reuse_grace_seconds=value)


# ---------------------------------------------------------------- concurrency


def _concurrent_refreshes(client: TestClient, key: Key, *refresh_tokens: str) -> list[httpx.Response]:
    """One refresh per token given, all at once, in the app's own event loop."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            data = {
                "grant_type": "refresh_token",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
            }
            requests = (http.post(TOKEN, data={**data, "refresh_token": token}) for token in refresh_tokens)
            return list(await asyncio.gather(*requests))

    assert client.portal is not None
    responses: list[httpx.Response] = client.portal.call(send)
    return responses


def test_concurrent_refreshes_within_the_grace_period_all_succeed_in_one_family(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    _, first = strict_tokens(strict_client, key, user)
    responses = _concurrent_refreshes(strict_client, key, *[first["refresh_token"]] * 4)
    assert [response.status_code for response in responses] == [200] * 4
    refresh_tokens = {response.json()["refresh_token"] for response in responses}
    assert len(refresh_tokens) == 4
    root, *successors = rows(directory)
    # Exactly one exchange of the presented token, and every answer is a member of its family.
    assert root.workflow_state == "deleted" and root.refresh_used_at is not None
    assert len(successors) == 4
    assert all(row.family_id == root.id and row.workflow_state == "active" for row in successors)
    for response in responses:
        assert me(strict_client, response.json()["access_token"]).status_code == 200
    clock.advance(GRACE + 1)
    assert refused(refresh(strict_client, key, first["refresh_token"]))
    assert active(directory) == 0


def test_concurrent_refreshes_without_a_grace_period_leave_no_fork(
    app_client: Callable[..., TestClient], directory: Directory, key: Key, user: Person
) -> None:
    client = app_client(profile=Profile.strict, refresh_reuse_grace_seconds=0)
    _, first = strict_tokens(client, key, user)
    responses = _concurrent_refreshes(client, key, *[first["refresh_token"]] * 4)
    winners = [response for response in responses if response.status_code == 200]
    assert len(winners) == 1
    assert all(refused(response) for response in responses if response.status_code != 200)
    # The other presentations were reuse: the family, the winner's tokens included, is gone.
    assert me(client, winners[0].json()["access_token"]).status_code == 401
    assert active(directory) == 0
    assert len(rows(directory)) == 2


def test_a_reuse_racing_a_rotation_leaves_nothing_alive(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    """The revocation must see the row the racing rotation adds (PostgreSQL: the family lock)."""
    families = []
    for _ in range(6):
        _, first = strict_tokens(strict_client, key, user)
        families.append((first, rotated(strict_client, key, first["refresh_token"])))
    clock.advance(GRACE + 1)
    for first, second in families:
        stale, current = _concurrent_refreshes(
            strict_client, key, first["refresh_token"], second["refresh_token"]
        )
        assert refused(stale)
        if current.status_code == 200:  # it rotated first: the revocation must take its answer too
            assert me(strict_client, current.json()["access_token"]).status_code == 401
        else:
            assert refused(current)
    assert active(directory) == 0


def test_the_exchange_is_a_compare_and_set(strict_client, settings: Settings, key: Key, user: Person) -> None:
    _, first = strict_tokens(strict_client, key, user)

    async def claim_twice() -> tuple[bool, bool, Any, Any]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                row = await tokens.find_refresh_row(session, first["refresh_token"])
                assert row is not None
                won = await tokens.claim_refresh(session, row)
                used_at = (
                    await session.execute(select(AccessToken.refresh_used_at).where(AccessToken.id == row.id))
                ).scalar_one()
                clock.advance(5)
                again = await tokens.claim_refresh(session, row)
                used_again = (
                    await session.execute(select(AccessToken.refresh_used_at).where(AccessToken.id == row.id))
                ).scalar_one()
                return won, again, used_at, used_again
        finally:
            await db.dispose()

    won, again, used_at, used_again = run(claim_twice())
    assert (won, again) == (True, False)
    assert used_again == used_at


# ---------------------------------------------------------------- the grant as a whole


def test_code_reuse_revokes_the_rotated_successors(
    strict_client, directory: Directory, key: Key, user: Person
) -> None:
    code, first = strict_tokens(strict_client, key, user)
    second = rotated(strict_client, key, first["refresh_token"])
    clock.advance(60)  # the code lives 10 minutes
    third = rotated(strict_client, key, second["refresh_token"])
    replay = exchange(strict_client, key, code, code_verifier=pkce_pair()[0])
    assert replay.json() == {"error": "invalid_grant", "error_description": "authorization_code not found"}
    assert me(strict_client, third["access_token"]).status_code == 401
    assert refused(refresh(strict_client, key, third["refresh_token"]))


def test_strict_code_reuse_revokes_the_first_token(strict_client, key: Key, user: Person) -> None:
    code, first = strict_tokens(strict_client, key, user)
    assert me(strict_client, first["access_token"]).status_code == 200
    assert exchange(strict_client, key, code, code_verifier=pkce_pair()[0]).status_code == 400
    assert me(strict_client, first["access_token"]).status_code == 401
    assert refused(refresh(strict_client, key, first["refresh_token"]))


def test_revoking_an_access_token_revokes_its_family(strict_client, key: Key, user: Person) -> None:
    _, first = strict_tokens(strict_client, key, user)
    one = rotated(strict_client, key, first["refresh_token"])
    other = rotated(strict_client, key, first["refresh_token"])  # within the grace period
    assert (
        strict_client.delete(TOKEN, headers={"Authorization": f"Bearer {one['access_token']}"}).json() == {}
    )
    assert me(strict_client, other["access_token"]).status_code == 401
    assert refused(refresh(strict_client, key, other["refresh_token"]))


def test_public_client_rotates_and_its_hard_expiry_rolls(
    strict_client, directory: Directory, user: Person
) -> None:
    key = directory.key(client_type="public")
    public = Key(key.client_id, "", key.redirect_uris)
    verifier, challenge = pkce_pair()
    code = get_code(strict_client, key, user, code_challenge=challenge, code_challenge_method="S256")
    current = exchange(strict_client, public, code, code_verifier=verifier).json()
    for _ in range(3):  # 300 minutes in all, past the first token's 120
        clock.advance(100 * 60)
        data = {
            "grant_type": "refresh_token",
            "client_id": key.client_id,
            "refresh_token": current["refresh_token"],
        }
        response = strict_client.post(TOKEN, data=data)
        assert response.status_code == 200, response.text
        assert response.json()["refresh_token"] != current["refresh_token"]
        current = response.json()
    assert me(strict_client, current["access_token"]).status_code == 200


def test_cleanup_keeps_a_used_refresh_token_while_its_family_lives(
    strict_client, directory: Directory, settings: Settings, key: Key, user: Person
) -> None:
    _, first = strict_tokens(strict_client, key, user)
    second = rotated(strict_client, key, first["refresh_token"])
    clock.advance(GRACE + 1)
    assert sweep(settings)["access_tokens"] == 0
    assert refused(refresh(strict_client, key, first["refresh_token"]))
    assert me(strict_client, second["access_token"]).status_code == 401
    assert sweep(settings)["access_tokens"] == 2


# ---------------------------------------------------------------- canvas profile


def test_canvas_profile_does_not_rotate(client, directory: Directory, key: Key, user: Person) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    first = exchange(client, key, code, code_verifier=verifier).json()
    for _ in range(3):
        response = refresh(client, key, first["refresh_token"])
        assert response.status_code == 200, response.text
        assert "refresh_token" not in response.json()
        assert me(client, response.json()["access_token"]).status_code == 200
    clock.advance(GRACE + 1)
    assert refresh(client, key, first["refresh_token"]).status_code == 200
    (row,) = rows(directory)
    assert (row.family_id, row.refresh_used_at, row.workflow_state) == (None, None, "active")


def test_family_lookups_read_a_partial_index(settings: Settings, directory: Directory) -> None:
    """Only rotations set ``family_id``, so its index leaves every other row out (a code
    exchange writes no entry of it), and a family lookup still reads that index, not the
    whole table (PostgreSQL is told to avoid a scan wherever an index can answer)."""
    directory.key()  # the test's database, migrated
    lookup = select(AccessToken.id).where(tokens._in_family(7))

    async def definition_and_plan() -> tuple[str, str]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                dialect = session.get_bind().dialect
                sql = str(lookup.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                if dialect.name == "sqlite":
                    found = "SELECT sql FROM sqlite_master WHERE name = 'ix_access_tokens_family_id'"
                    plan = [row[-1] for row in await session.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))]
                else:
                    found = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_access_tokens_family_id'"
                    await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
                    plan = [row[0] for row in await session.execute(sa.text(f"EXPLAIN {sql}"))]
                return str((await session.execute(sa.text(found))).scalar_one()), " ".join(plan)
        finally:
            await db.dispose()

    definition, plan = run(definition_and_plan())
    assert definition.replace("(", "").replace(")", "").endswith("WHERE family_id IS NOT NULL"), definition
    assert "ix_access_tokens_family_id" in plan, plan


# ---------------------------------------------------------------- migration 0005


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="the migration is checked on a SQLite file of its own")
def test_migration_0005_up_and_down(tmp_path) -> None:
    """Existing tokens become the first (and only) row of their own family, never exchanged.
    (Rows are written in SQL, as the models of today hold later revisions' columns;
    tests/core/test_migrations_match_models.py compares head with the models.)"""
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET_KEY)
    upgrade(settings, "0004")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lmsauth.db'}")
    moment = "'2026-01-02 03:04:05.000000'"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO users (id, name, sortable_name, short_name, is_admin, uuid, workflow_state, "
                f"created_at) VALUES (1, 'A', 'A', 'A', 0, 'u1', 'registered', {moment})"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO developer_keys (id, name, secret_digest, redirect_uris, scopes, require_scopes, "
                "trusted, client_type, workflow_state, binding_state, auto_expire_tokens, created_at, "
                "updated_at) VALUES (1, 'K', 'd', '[]', '[]', 0, 0, 'confidential', 'active', 'on', 1, "
                f"{moment}, {moment})"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO access_tokens (user_id, developer_key_id, token_digest, token_hint, scopes, "
                "remember_access, workflow_state, created_at, updated_at) VALUES (1, 1, 'a', 'abcde', "
                "'[]', 0, 'active', '2026-01-02 03:04:05.000000', '2026-01-02 03:04:05.000000')"
            )
        )
    upgrade(settings, "0005")
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT family_id, refresh_used_at FROM access_tokens")).one()
    assert tuple(row) == (None, None)
    command.downgrade(alembic_config(settings), "0004")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("access_tokens")}
    assert not {"family_id", "refresh_used_at"} & columns
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM access_tokens")).scalar_one() == 1
    engine.dispose()
