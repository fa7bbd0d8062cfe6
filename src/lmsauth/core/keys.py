"""The signing key ring: the keys that sign JWTs, published as a JWKS, and their lifecycle.

Each key has one algorithm (``alg``): RS256 (RSA-2048), Canvas's and the default; ES256 (P-256)
or EdDSA (Ed25519) where a deployment chooses them for identity tokens
(``LMSAUTH_IDENTITY_SIGNING_ALG``). A ring keeps a signing key for each algorithm it is given;
the lifecycle below runs per algorithm, and a key of an algorithm the ring no longer signs with
keeps verifying until ``maintain()`` retires it like a rotated-out key.

Every key has a ``kid`` (Canvas's format, ``<ISO 8601 UTC>_<uuid>``) and three moments:

- ``created_at``: from then on it is published in the JWKS;
- ``activates_at``: from then on it signs, if it is the newest key that has activated. A
  rotation sets it ``LMSAUTH_KEY_PUBLISH_AHEAD_SECONDS`` ahead (default: the longest JWKS
  max-age we send), so every cache that honours our JWKS knows a key before it meets a token
  the key signed (RFC 7517 has no rule here; this is Canvas's past/present/future key set);
- ``retired_at``: set when a newer key is made, to the moment the newer one activates plus
  ``LMSAUTH_KEY_RETIRE_AFTER_SECONDS`` (the longest token lifetime plus a margin). From then
  on the key is neither published nor accepted, and the periodic clean-up deletes it.

A process may hold several rings, each its own set of rows (``ring``): ``main`` signs OAuth2,
Identity and DAP tokens (``/login/oauth2/jwks``); ``lti`` signs LTI 1.3 messages and is
published at ``/api/lti/security/jwks``, as Canvas keeps ``Lti::KeyStorage`` apart from its
OAuth2 keys. A ring made with ``keep_future`` always publishes the key that will sign next, so
that its set is Canvas's past, present and future keys (spec lti13.md 4).

Private keys are encrypted at rest with a Fernet key derived (HKDF-SHA256) from
``LMSAUTH_SECRET_KEY`` (``core.sealing``).

Many instances (DESIGN.md): the database holds the ring; each process keeps it decrypted in
memory and compares a *generation* before every signature, every verification and every
JWKS answer, reloading when it changed. The generation is a random value in the shared store
(Redis) that every rotation replaces after its commit, or, without a shared store, a
fingerprint of the table (row count and newest ``created_at``) read from the database. So once
``rotate()`` (or ``lmsauth keys rotate``) has returned, every instance publishes the new key,
accepts tokens it signs and, once it has activated, signs with it: there is no window. As a
safety net for a rotation that could not reach Redis, ``maintain()`` (the periodic clean-up)
also reloads unconditionally.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import jwt
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlalchemy import String, Text, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import base64url, clock, sealing
from lmsauth.core.db import Base, Database, UTCDateTime, lock_for_transaction
from lmsauth.core.fastread import ReadQuery
from lmsauth.core.kv import Store

ALGORITHM = "RS256"  # Canvas's, and every ring's unless told otherwise
ALGORITHMS = ("RS256", "ES256", "EdDSA")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
GENERATION_KEY = "signing-keys:generation"
log = logging.getLogger("lmsauth.keys")


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(80), primary_key=True)
    ring: Mapped[str] = mapped_column(String(20), default="main", server_default="main", index=True)
    alg: Mapped[str] = mapped_column(String(10), default=ALGORITHM)
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


_PURPOSE = b"lmsauth signing keys"


class LifecycleSettings(Protocol):
    """The ``LMSAUTH_KEY_*`` settings (``lmsauth.settings.Settings`` has them)."""

    key_publish_ahead_seconds: float
    key_retire_after_seconds: float
    key_rotation_days: float


@dataclass(frozen=True)
class KeyLifecycle:
    """How long a key is published before it signs, after it stopped signing, and its age
    at automatic rotation (None: never)."""

    publish_ahead: timedelta = timedelta(seconds=864_000)
    retire_after: timedelta = timedelta(seconds=3_900)
    rotate_after: timedelta | None = timedelta(days=90)

    @classmethod
    def from_settings(cls, settings: LifecycleSettings) -> KeyLifecycle:
        return cls(
            publish_ahead=timedelta(seconds=settings.key_publish_ahead_seconds),
            retire_after=timedelta(seconds=settings.key_retire_after_seconds),
            rotate_after=timedelta(days=settings.key_rotation_days) if settings.key_rotation_days else None,
        )


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None

    def published_at(self, moment: datetime) -> bool:
        return self.retired_at is None or moment < self.retired_at

    def summary(self, moment: datetime) -> dict[str, Any]:
        """What ``lmsauth keys list`` shows."""
        if not self.published_at(moment):
            state = "retired"
        elif moment < self.activates_at:
            state = "pending"
        else:
            state = "active"
        return {
            "kid": self.kid,
            "alg": self.alg,
            "state": state,
            "created_at": self.created_at.isoformat(),
            "activates_at": self.activates_at.isoformat(),
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }


def generation_columns(ring: str) -> tuple[Any, Any]:
    """Without a shared store, a ring's "generation" is what every change to it alters: the
    number of rows (retirement deletes) and the newest creation time (rotation inserts). Both
    as scalar subqueries, so that a hot read of another table can carry them along
    (``identity.clients.find_client_and_generation``: one round trip for an identity login)."""
    return (
        select(func.count()).select_from(SigningKey).where(SigningKey.ring == ring).scalar_subquery(),
        select(func.max(SigningKey.created_at)).where(SigningKey.ring == ring).scalar_subquery(),
    )


def _generation_query(ring: str) -> ReadQuery:
    return ReadQuery(select(*generation_columns(ring)))


UNREAD_GENERATION = object()  # ``KeyRing.refresh``'s default: read it there


class KeyRing:
    """Holds the decrypted keys of one process; the database is the source of truth."""

    def __init__(
        self,
        db: Database,
        secret_key: str,
        *,
        store: Store | None = None,
        lifecycle: KeyLifecycle | None = None,
        ring: str = "main",
        keep_future: bool = False,
        algorithms: tuple[str, ...] = (ALGORITHM,),
    ) -> None:
        unknown = set(algorithms) - set(ALGORITHMS)
        if unknown or not algorithms:
            raise ValueError(f"signing algorithms must be some of {ALGORITHMS}, not {algorithms}")
        self._db = db
        self.ring = ring
        self._keep_future = keep_future
        self._generation_key = GENERATION_KEY if ring == "main" else f"signing-keys:{ring}:generation"
        self._generation_query = _generation_query(ring)
        self.algorithms = tuple(dict.fromkeys(algorithms))
        self._secret_key = secret_key
        self._store = store if store is not None and store.shared else None
        self.lifecycle = lifecycle or KeyLifecycle()
        self._keys: list[LoadedKey] = []
        self._decrypted: dict[str, PrivateKey] = {}
        self._generation: object = None
        self._loaded = False
        self._reloading = asyncio.Lock()

    # ------------------------------------------------------------------ loading

    async def load(self) -> None:
        """Read every published key, creating a first one for each algorithm that has none that
        can sign (a new ring, or an algorithm just chosen: its first key signs at once) and, with
        ``keep_future``, the next one of each algorithm that has none pending."""
        if not self._complete(await self._read_rows(), clock.now()):
            async with self._db.session(write=True) as session:
                await lock_for_transaction(session, "signing keys")
                now = clock.now()
                rows = await self._published_rows(session, now)
                for alg in self._missing(rows, now):
                    row = self._new_row(now, activates_at=now, alg=alg)
                    session.add(row)
                    rows.append(row)
                for alg in self._without_future(rows, now):
                    self._add_future(session, rows, now, self.lifecycle.publish_ahead, alg)
            await self._announce()
        await self._reload()

    def _complete(self, rows: list[SigningKey], now: datetime) -> bool:
        return not self._missing(rows, now) and not self._without_future(rows, now)

    async def _reload(self) -> None:
        # The generation first: a change committed after it was read is seen at the next check.
        generation = await self._read_generation()
        self._install(await self._read_rows(), generation)

    @property
    def generation_in_database(self) -> bool:
        """Whether the generation is read from the database (``generation_columns``), not from
        the shared store."""
        return self._store is None

    async def refresh(self, generation: object = UNREAD_GENERATION) -> None:
        """Reload when another process (or instance) changed the ring since the last load.
        ``generation``: this ring's ``generation_columns`` a caller has just read along with its
        own row (only where ``generation_in_database``), instead of reading them here."""
        if generation is UNREAD_GENERATION or not self.generation_in_database:
            generation = await self._read_generation()
        if self._loaded and generation == self._generation:
            return
        async with self._reloading:
            if self._loaded and generation == self._generation:
                return
            self._install(await self._read_rows(), generation)

    async def maintain(self) -> str | None:
        """The periodic part (``app.py``'s clean-up): rotate each algorithm whose newest key is
        older than ``rotate_after``, retire the keys of algorithms this ring no longer signs
        with (they verify ``retire_after`` longer), delete retired keys, and reload. Returns the
        last new key's ``kid``."""
        kid = None
        if self.lifecycle.rotate_after is not None:
            for alg in self.algorithms:
                kid = await self.rotate(if_older_than=self.lifecycle.rotate_after, alg=alg) or kid
        if self._keep_future:  # a future key began to sign: publish the next one
            for alg in self._without_future(await self._read_rows(), clock.now()):
                kid = await self.rotate(alg=alg) or kid
        retiring = False
        async with self._db.session(write=True) as session:
            now = clock.now()
            for row in await self._published_rows(session, now):
                if row.alg not in self.algorithms and row.retired_at is None:
                    row.retired_at = now + self.lifecycle.retire_after
                    retiring = True
            await session.execute(
                delete(SigningKey).where(SigningKey.ring == self.ring, SigningKey.retired_at <= now)
            )
        if retiring:
            await self._announce()
        await self._reload()
        return kid

    async def _read_rows(self) -> list[SigningKey]:
        async with self._db.session() as session:
            return await self._published_rows(session, clock.now())

    async def _read_generation(self) -> object:
        if self._store is not None:
            return await self._store.get(self._generation_key)
        # Every signature and every verification asks: one statement on the driver (``fastread``).
        return await self._db.reads.one(self._generation_query)

    async def _announce(self) -> None:
        """After a commit that changed the ring: every instance's next check sees a change."""
        if self._store is not None:
            await self._store.set(self._generation_key, uuid.uuid4().hex)

    def _install(self, rows: list[SigningKey], generation: object) -> None:
        keys = [self._decrypt(row) for row in rows]
        keys.sort(key=lambda key: (key.activates_at, key.created_at, key.kid))
        self._decrypted = {key.kid: key.private_key for key in keys}
        self._keys = keys
        self._generation = generation
        self._loaded = True

    def _missing(self, rows: list[SigningKey], now: datetime) -> list[str]:
        """The ring's algorithms that no published key of theirs can sign with now."""
        ready = {row.alg for row in rows if row.activates_at <= now}
        return [alg for alg in self.algorithms if alg not in ready]

    def _without_future(self, rows: list[SigningKey], now: datetime) -> list[str]:
        """With ``keep_future``, the ring's algorithms that publish no key to sign next."""
        if not self._keep_future:
            return []
        pending = {row.alg for row in rows if row.activates_at > now}
        return [alg for alg in self.algorithms if alg not in pending]

    async def _published_rows(self, session: AsyncSession, now: datetime) -> list[SigningKey]:
        result = await session.scalars(
            select(SigningKey)
            .where(
                SigningKey.ring == self.ring,
                or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now),
            )
            .order_by(SigningKey.activates_at, SigningKey.created_at, SigningKey.kid)
        )
        return list(result)

    # ------------------------------------------------------------------ rotation

    async def rotate(
        self,
        *,
        activate_in: timedelta | None = None,
        if_older_than: timedelta | None = None,
        alg: str = ALGORITHM,
    ) -> str | None:
        """Add an ``alg`` key that signs after ``activate_in`` (default ``publish_ahead``); every
        older key of that algorithm retires ``retire_after`` past that moment. With
        ``if_older_than``, only when the newest such key is at least that old (None is returned
        otherwise). Instances serialise on a lock, so two automatic rotations at once make one
        key."""
        if alg not in ALGORITHMS:
            raise ValueError(f"unknown signing algorithm {alg!r}")
        async with self._db.session(write=True) as session:
            await lock_for_transaction(session, "signing keys")
            now = clock.now()
            rows = [row for row in await self._published_rows(session, now) if row.alg == alg]
            if if_older_than is not None and rows:
                newest = max(row.created_at for row in rows)
                if now - newest < if_older_than:
                    return None
            ahead = self.lifecycle.publish_ahead if activate_in is None else activate_in
            row = self._add_future(session, rows, now, ahead, alg)
        log.info("signing key %s created; it signs from %s", row.kid, row.activates_at.isoformat())
        await self._announce()
        await self._reload()
        return row.kid

    def _add_future(
        self, session: AsyncSession, rows: list[SigningKey], now: datetime, ahead: timedelta, alg: str
    ) -> SigningKey:
        """An ``alg`` key that signs ``ahead`` from now; every older ``alg`` key in ``rows``
        retires ``retire_after`` past that moment."""
        row = self._new_row(now, activates_at=now + ahead, alg=alg)
        for older in rows:
            if older.alg != alg:
                continue
            retires = row.activates_at + self.lifecycle.retire_after
            if older.retired_at is None or older.retired_at > retires:
                older.retired_at = retires
        session.add(row)
        return row

    def _new_row(self, now: datetime, *, activates_at: datetime, alg: str) -> SigningKey:
        kid = f"{now.strftime('%Y-%m-%dT%H:%M:%SZ')}_{uuid.uuid4()}"
        private_key, public = _generate(alg)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public.pop("key_ops", None)  # RFC 7517 4.3: "use" and "key_ops" SHOULD NOT both appear
        public.update({"kid": kid, "alg": alg, "use": "sig"})
        return SigningKey(
            kid=kid,
            ring=self.ring,
            alg=alg,
            private_key_encrypted=sealing.seal(self._secret_key, _PURPOSE, pem),
            public_jwk=json.dumps(public, sort_keys=True),
            created_at=now,
            activates_at=activates_at,
        )

    def _decrypt(self, row: SigningKey) -> LoadedKey:
        private_key = self._decrypted.get(row.kid)
        if private_key is None:
            pem = sealing.unseal(
                self._secret_key, _PURPOSE, row.private_key_encrypted, what=f"signing key {row.kid}"
            )
            # The key is our own and Fernet authenticated it, so OpenSSL's slow consistency
            # check (50-100 ms a key, at every start) proves nothing more.
            loaded = serialization.load_pem_private_key(
                pem, password=None, unsafe_skip_rsa_key_validation=True
            )
            if not isinstance(
                loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
            ):
                raise TypeError(f"signing key {row.kid} is not an {row.alg} key")
            private_key = loaded
        return LoadedKey(
            row.kid,
            row.alg,
            private_key,
            json.loads(row.public_jwk),
            row.created_at,
            row.activates_at,
            row.retired_at,
        )

    # ------------------------------------------------------------------ use

    def loaded_keys(self) -> list[LoadedKey]:
        """Every loaded key, oldest activation first (``lmsauth keys list``)."""
        return list(self._keys)

    @property
    def current(self) -> LoadedKey:
        """The RS256 key that signs now (``current_for`` names another algorithm)."""
        return self.current_for(ALGORITHM)

    def current_for(self, alg: str) -> LoadedKey:
        """The ``alg`` key that signs now: the newest of that algorithm that has activated and
        is not retired."""
        if not self._loaded:
            raise RuntimeError("key ring not loaded")
        now = clock.now()
        for key in reversed(self._keys):
            if key.alg == alg and key.activates_at <= now and key.published_at(now):
                return key
        raise RuntimeError(f"no {alg} signing key has activated")

    def jwks(self, algorithms: tuple[str, ...] = ALGORITHMS) -> dict[str, list[dict[str, Any]]]:
        """The published set as loaded (of ``algorithms`` only, when given); ``published_jwks()``
        checks for changes first."""
        now = clock.now()
        return {
            "keys": [key.public_jwk for key in self._keys if key.alg in algorithms and key.published_at(now)]
        }

    async def published_jwks(
        self, algorithms: tuple[str, ...] = ALGORITHMS
    ) -> dict[str, list[dict[str, Any]]]:
        await self.refresh()
        return self.jwks(algorithms)

    def sign(
        self, claims: dict[str, Any], headers: dict[str, Any] | None = None, *, alg: str = ALGORITHM
    ) -> str:
        """Sign with the current ``alg`` key as loaded; ``sign_latest()`` checks for changes first.

        The JWS compact serialization (RFC 7515 section 7.1) is written here rather than by
        ``jwt.encode``: it is three base64url parts around one signature, and PyJWT's general
        path (key preparation, sorted ``json.dumps``) cost ~12 % of an identity login on the
        benchmark core. The signature is ``cryptography``'s, in the form RFC 7518 section 3
        (RS256, ES256) or RFC 8037 section 3.1 (EdDSA) gives it; every token is still verified
        by PyJWT (tests, DAP, clients). Claims must be JSON values already (ints for times),
        as all of ours are.
        """
        key = self.current_for(alg)
        header = {"alg": alg, "typ": "JWT", "kid": key.kid, **(headers or {})}
        signing_input = base64url.encode(orjson.dumps(header)) + b"." + base64url.encode(orjson.dumps(claims))
        return (signing_input + b"." + base64url.encode(_signature(key.private_key, signing_input))).decode(
            "ascii"
        )

    async def sign_latest(
        self,
        claims: dict[str, Any],
        headers: dict[str, Any] | None = None,
        *,
        alg: str = ALGORITHM,
        generation: object = UNREAD_GENERATION,
    ) -> str:
        """Sign with the ``alg`` key that signs now on every instance (``generation``: see
        ``refresh``)."""
        await self.refresh(generation)
        return self.sign(claims, headers, alg=alg)

    def published_key(self, kid: str) -> LoadedKey | None:
        """The published key ``kid`` as loaded; ``verification_key()`` checks for changes first."""
        now = clock.now()
        for key in self._keys:
            if key.kid == kid and key.published_at(now):
                return key
        return None

    def public_key(self, kid: str) -> PublicKey | None:
        key = self.published_key(kid)
        return None if key is None else key.private_key.public_key()

    async def latest_published_key(self, kid: str) -> LoadedKey | None:
        """The key ``kid`` (its ``alg`` and public key) if it is published now on any instance,
        else None."""
        await self.refresh()
        return self.published_key(kid)

    async def verification_key(self, kid: str) -> PublicKey | None:
        """The public key for ``kid`` if it is published now on any instance, else None."""
        await self.refresh()
        return self.public_key(kid)


def _generate(alg: str) -> tuple[PrivateKey, dict[str, Any]]:
    """A new private key for ``alg`` and its public JWK (RFC 7518 section 6, RFC 8037 section 2)."""
    if alg == "RS256":
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return rsa_key, json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    if alg == "ES256":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        return ec_key, json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    if alg == "EdDSA":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        return ed_key, json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(ed_key.public_key()))
    raise ValueError(f"unknown signing algorithm {alg!r}")


def _signature(private_key: PrivateKey, signing_input: bytes) -> bytes:
    if isinstance(private_key, rsa.RSAPrivateKey):  # RSASSA-PKCS1-v1_5 with SHA-256
        return private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        # JWS wants R || S, 32 bytes each (RFC 7518 section 3.4), not cryptography's DER
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return private_key.sign(signing_input)
