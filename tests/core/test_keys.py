"""``core.keys``: the signing key lifecycle (published before it signs, retired after the tokens
it signed expired), automatic rotation, and rings in several processes that agree at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from lmsauth.cli import main
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.core.keys import KeyLifecycle, KeyRing, SigningKey
from lmsauth.core.kv import RedisStore, Store, create_store
from lmsauth.identity import admin as identity_admin
from lmsauth.identity.clients import find_client_and_generation
from lmsauth.settings import Settings
from tests.conftest import TEST_SECRET_KEY

LIFECYCLE = KeyLifecycle(
    publish_ahead=timedelta(minutes=10), retire_after=timedelta(hours=1), rotate_after=timedelta(days=30)
)
Ring = Callable[..., Awaitable[KeyRing]]


@pytest.fixture
async def ring(settings: Settings) -> AsyncIterator[Ring]:
    """``await ring()``: a loaded key ring as another process would hold it (its own engine
    and store) over the test's database and, when configured, Redis."""
    opened: list[tuple[Database, Store]] = []

    async def make(lifecycle: KeyLifecycle = LIFECYCLE, **options: Any) -> KeyRing:
        db = Database(settings.resolved_database_url)
        store = create_store(settings.redis_url, namespace=settings.redis_namespace)
        opened.append((db, store))
        keyring = KeyRing(db, TEST_SECRET_KEY, store=store, lifecycle=lifecycle, **options)
        await keyring.load()
        return keyring

    yield make
    for db, store in opened:
        await db.dispose()
        await store.close()


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def published(keyring: KeyRing) -> set[str]:
    return {key["kid"] for key in keyring.jwks()["keys"]}


async def test_the_first_key_signs_at_once(ring: Ring) -> None:
    keyring = await ring()
    (key,) = keyring.loaded_keys()
    assert key.activates_at == key.created_at and key.retired_at is None
    token = await keyring.sign_latest({"sub": "x"})
    assert kid_of(token) == key.kid
    assert published(keyring) == {key.kid}


async def test_a_rotated_key_is_published_before_it_signs_and_the_old_one_retires_later(ring: Ring) -> None:
    keyring = await ring()
    old = keyring.current.kid
    new = await keyring.rotate()
    assert new is not None and new != old
    # Published at once, but the old key still signs for publish_ahead.
    assert published(keyring) == {old, new}
    assert kid_of(await keyring.sign_latest({"sub": "x"})) == old
    old_token = keyring.sign({"sub": "old"})

    clock.advance(LIFECYCLE.publish_ahead.total_seconds())
    assert kid_of(await keyring.sign_latest({"sub": "x"})) == new
    # The old key's tokens verify until the longest of them has expired ... (a minute's
    # margin: real time goes on under the moved clock, and a loaded machine is slow)
    clock.advance(LIFECYCLE.retire_after.total_seconds() - 60)
    assert await keyring.verification_key(old) is not None
    assert published(keyring) == {old, new}
    jwt.decode(old_token, await keyring.verification_key(old), algorithms=["RS256"])
    # ... and then it is retired: neither published nor accepted.
    clock.advance(60)
    assert await keyring.verification_key(old) is None
    assert published(keyring) == {new}
    summary = {key.kid: key.summary(clock.now())["state"] for key in keyring.loaded_keys()}
    assert summary == {old: "retired", new: "active"}


async def test_an_emergency_rotation_signs_at_once(ring: Ring) -> None:
    keyring = await ring()
    old = keyring.current.kid
    new = await keyring.rotate(activate_in=timedelta(0))
    assert kid_of(await keyring.sign_latest({"sub": "x"})) == new
    (old_key,) = [key for key in keyring.loaded_keys() if key.kid == old]
    assert old_key.retired_at is not None
    assert old_key.retired_at - clock.now() <= LIFECYCLE.retire_after


async def test_a_rotation_is_seen_at_once_by_every_other_process(ring: Ring) -> None:
    """No waiting, no interval: the other ring publishes, accepts and signs with the new key
    on its very next call (its generation check sees the change)."""
    here, there = await ring(), await ring()
    new = await here.rotate(activate_in=timedelta(0))
    assert new is not None
    token = await here.sign_latest({"sub": "x"})
    assert new in {key["kid"] for key in (await there.published_jwks())["keys"]}
    assert await there.verification_key(new) is not None
    jwt.decode(token, await there.verification_key(new), algorithms=["RS256"])
    assert kid_of(await there.sign_latest({"sub": "y"})) == new


async def test_an_unknown_kid_is_refused_without_harm(ring: Ring) -> None:
    keyring = await ring()
    assert await keyring.verification_key("2026-01-01T00:00:00Z_nobody") is None
    assert await keyring.verification_key(keyring.current.kid) is not None


async def test_automatic_rotation_by_age_makes_one_key_even_when_instances_race(ring: Ring) -> None:
    first, second = await ring(), await ring()
    assert await first.maintain() is None  # young: nothing to do
    clock.advance(timedelta(days=31).total_seconds())
    made = await asyncio.gather(first.maintain(), second.maintain())
    assert len([kid for kid in made if kid is not None]) == 1
    assert len(first.loaded_keys()) == len(second.loaded_keys()) == 2
    assert await first.maintain() is None  # the new key is young


async def test_maintenance_deletes_retired_keys(ring: Ring, settings: Settings) -> None:
    keyring = await ring()
    old = keyring.current.kid
    await keyring.rotate(activate_in=timedelta(0))
    clock.advance(LIFECYCLE.retire_after.total_seconds() + 1)
    await keyring.maintain()
    db = Database(settings.resolved_database_url)
    async with db.session() as session:
        kids = set(await session.scalars(select(SigningKey.kid).where(SigningKey.ring == "main")))
    await db.dispose()
    assert old not in kids and len(kids) == 1
    assert len(keyring.loaded_keys()) == 1


async def test_the_lti_key_set_is_its_own_with_past_present_and_future_keys(ring: Ring) -> None:
    """Spec lti13.md 4: ``/api/lti/security/jwks`` publishes Canvas's past, present and future
    keys, none of them the OAuth2 ring's."""
    main = await ring()
    lti = await ring(ring="lti", keep_future=True)
    again = await ring(ring="lti", keep_future=True)  # another instance: no second future key
    kids = [key["kid"] for key in lti.jwks()["keys"]]
    assert kids == [key["kid"] for key in again.jwks()["keys"]]
    assert len(kids) == 2 and lti.current.kid == kids[0]  # present, future
    assert not set(kids) & {key["kid"] for key in main.jwks()["keys"]}
    activates = lti.loaded_keys()[1].activates_at
    clock.advance((activates - clock.now()).total_seconds() + 1)
    await lti.maintain()  # the future key signs now: a new future key is published
    past, present, future = [key["kid"] for key in lti.jwks()["keys"]]
    assert (past, present) == (kids[0], kids[1]) and lti.current.kid == present
    token = await lti.sign_latest({"sub": "x"})
    assert jwt.get_unverified_header(token)["kid"] == present
    assert future not in kids


async def test_the_generation_lives_in_redis_when_there_is_one(ring: Ring, settings: Settings) -> None:
    keyring = await ring()
    store = keyring._store
    if settings.redis_url:
        assert isinstance(store, RedisStore)
        before = await store.get("signing-keys:generation")
        await keyring.rotate()
        assert await store.get("signing-keys:generation") not in (None, before)
    else:
        assert store is None  # an in-process store tells no other process: the database does


def test_cli_rotate_and_list(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSAUTH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LMSAUTH_SECRET_KEY", TEST_SECRET_KEY)
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(main, ["keys", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    (first,) = run("list", "--json")
    assert first["state"] == "active" and first["retired_at"] is None
    pending = run("rotate", "--json")
    assert pending["state"] == "pending"
    emergency = run("rotate", "--activate-in", "0", "--json")
    assert emergency["state"] == "active"
    states = {key["kid"]: key["state"] for key in run("list", "--json")}
    assert states == {first["kid"]: "active", pending["kid"]: "pending", emergency["kid"]: "active"}
    listed = {key["kid"]: key for key in run("list", "--json")}
    # Both older keys retire an hour and five minutes after the emergency key took over.
    assert listed[first["kid"]]["retired_at"] == listed[pending["kid"]]["retired_at"] is not None


def test_migration_0004_activates_existing_keys_when_they_were_created(tmp_path) -> None:
    """Keys made before the lifecycle signed at once: they activated at their creation."""
    import sqlalchemy as sa
    from alembic import command

    from lmsauth.migrations import alembic_config, upgrade

    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET_KEY)
    upgrade(settings, "0003")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lmsauth.db'}")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO signing_keys (kid, alg, private_key_encrypted, public_jwk, created_at) "
                "VALUES ('old', 'RS256', 'x', '{}', '2026-01-02 03:04:05.000000')"
            )
        )
    upgrade(settings, "0004")
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT created_at, activates_at FROM signing_keys")).one()
    assert row[0] == row[1]
    command.downgrade(alembic_config(settings), "0003")
    assert "activates_at" not in {c["name"] for c in sa.inspect(engine).get_columns("signing_keys")}
    engine.dispose()


async def identity_client_id(keyring: KeyRing) -> str:
    async with keyring._db.session(write=True) as session:
        made, _ = await identity_admin.create_client(session, name="Test institution key", principal="inst-1")
        return made.client_id


async def test_the_generation_read_with_an_identity_client_is_the_rings_own(
    ring: Ring,
) -> None:
    """An identity login reads the client and the ring's generation in one statement: it must
    equal the ring's own reading (else every login would reload the ring), and a rotation by
    another process must still be seen by the next signature through it."""
    here, there = await ring(), await ring()
    if not here.generation_in_database:
        pytest.skip("with Redis the generation lives there (the test above)")
    client_id = await identity_client_id(here)
    client, generation = await find_client_and_generation(here._db, client_id, here.ring)
    assert client is not None and generation == await here._read_generation()
    new = await there.rotate(activate_in=timedelta(0))
    _, generation = await find_client_and_generation(here._db, client_id, here.ring)
    assert kid_of(await here.sign_latest({"sub": "x"}, generation=generation)) == new


async def test_the_identity_login_reads_its_own_rings_generation_whatever_it_signs_with(ring: Ring) -> None:
    """Identity tokens may be ES256 (``LMSAUTH_IDENTITY_SIGNING_ALG``): the one read of an
    identity login still carries the generation of the identity ring (``main``) only, so a
    rotation of the LTI ring leaves it as it was, and an ES256 rotation by another process is
    seen by the very next ES256 signature."""
    algorithms = ("RS256", "ES256")
    here, there = await ring(algorithms=algorithms), await ring(algorithms=algorithms)
    lti = await ring(ring="lti", keep_future=True)
    if not here.generation_in_database:
        pytest.skip("with Redis the generation lives there")
    client_id = await identity_client_id(here)
    _, before = await find_client_and_generation(here._db, client_id, here.ring)
    await lti.rotate(activate_in=timedelta(0))
    _, after_lti = await find_client_and_generation(here._db, client_id, here.ring)
    assert after_lti == before == await here._read_generation()
    new = await there.rotate(activate_in=timedelta(0), alg="ES256")
    _, generation = await find_client_and_generation(here._db, client_id, here.ring)
    token = await here.sign_latest({"sub": "x"}, alg="ES256", generation=generation)
    assert kid_of(token) == new and jwt.get_unverified_header(token)["alg"] == "ES256"
    assert here.current.kid == there.current.kid  # the RS256 key did not move


async def test_rotating_one_algorithm_or_ring_leaves_the_others_keys_alone(ring: Ring) -> None:
    """A ring keeps a lifecycle per algorithm, and each ring its own rows: an ES256 rotation
    retires no RS256 key, the LTI ring keeps its future key, and maintenance of one ring
    deletes none of the other's keys."""
    main = await ring(algorithms=("RS256", "ES256"))
    lti = await ring(ring="lti", keep_future=True, algorithms=("RS256",))
    rs256, lti_kids = main.current.kid, {key.kid for key in lti.loaded_keys()}
    await main.rotate(activate_in=timedelta(0), alg="ES256")
    assert main.current.kid == rs256
    assert all(key.retired_at is None for key in main.loaded_keys() if key.alg == "RS256")
    await lti.refresh()
    assert {key.kid for key in lti.loaded_keys()} == lti_kids
    clock.advance(LIFECYCLE.retire_after.total_seconds() + 1)
    await main.maintain()  # deletes the first ES256 key, nothing of the LTI ring's
    assert [key.alg for key in main.loaded_keys()] == ["RS256", "ES256"]
    await lti.refresh()
    assert {key.kid for key in lti.loaded_keys()} == lti_kids
    assert any(key.activates_at > clock.now() for key in lti.loaded_keys())
