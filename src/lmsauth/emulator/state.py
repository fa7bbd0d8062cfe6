"""The emulator's own state: faults, the traffic log, and the seeds that define "the seeded
state" a reset returns to. It lives in the one process that serves (``core.clock`` does too)."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from lmsauth import seed
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.core.keys import KeyRing
from lmsauth.core.kv import Store
from lmsauth.core.ratelimit import RateLimits
from lmsauth.emulator import records
from lmsauth.emulator.faults import FaultBook
from lmsauth.emulator.traffic import TrafficLog
from lmsauth.settings import Settings

log = logging.getLogger("lmsauth.emulator")


@dataclass(frozen=True)
class SeededKey:
    """A developer key as its seed names it, secret included: the one-click flow needs it."""

    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]


@dataclass(frozen=True)
class SeededUser:
    login: str
    password: str
    name: str


def read_seed_setting(value: str) -> str:
    """``LMSAUTH_EMULATOR_SEED``: ``demo`` or a path to a TOML seed file."""
    if value == "demo":
        return seed.demo_seed_text()
    return seed.load_file(Path(value))


@dataclass
class EmulatorState:
    settings: Settings
    db: Database
    keyring: KeyRing
    # Rate-limit counters and other short-lived state (``core.kv``): a reset empties it, so a
    # long test session never meets a login lock an earlier test provoked.
    store: Store | None = None
    # What each process remembers of the store's answers (refused addresses): emptied with it.
    limits: RateLimits | None = None
    faults: FaultBook = field(default_factory=FaultBook)
    traffic: TrafficLog = field(default_factory=TrafficLog)
    seeds: list[str] = field(default_factory=list)
    start_kids: set[str] = field(default_factory=set)
    # The seeded state's rows, made by the first reset after a seed: later resets copy them
    # back instead of seeding again, which would hash every seeded password again (argon2id).
    seeded_rows: records.Snapshot | None = None

    async def start(self) -> None:
        """At server start, after the key ring is loaded: note the keys, load the seed."""
        async with self.db.session() as session:
            self.start_kids = await records.signing_key_ids(session)
        if self.settings.emulator_seed:
            await self.load_seed(read_seed_setting(self.settings.emulator_seed))
        log.warning(
            "lmsauth EMULATOR mode: control API at %s/_emulator/ (not for production)",
            self.settings.public_url,
        )

    async def load_seed(self, text: str) -> seed.SeedResult:
        """Apply a seed (all or nothing) and remember it for later resets."""
        result = await seed.load(self.db, text, self.settings)
        self.seeds.append(text)
        self.seeded_rows = None
        return result

    async def reset(self) -> None:
        """Back to how the emulator started: the database holds exactly what its seeds made
        (wiped and re-seeded in one transaction), real time, no faults, an empty log."""
        async with self.db.session(write=True) as session:
            await records.wipe(session, self.start_kids)
            if self.seeded_rows is None:
                for text in self.seeds:
                    await seed.load(cast(Database, records.OneTransaction(session)), text, self.settings)
                rows = await records.snapshot(session)
            else:
                await records.restore(session, self.seeded_rows)
                rows = self.seeded_rows
        self.seeded_rows = rows  # only once the transaction committed
        if self.store is not None:
            await self.store.delete_all()
        if self.limits is not None:
            self.limits.forget()
        await self.keyring.load()
        clock.reset()
        self.faults.clear()
        self.traffic.clear()

    def seeded_keys(self) -> list[SeededKey]:
        """Developer keys whose seed gives both ``client_id`` and ``client_secret``."""
        found: dict[str, SeededKey] = {}
        for data in self._parsed():
            for item in data.get("developer_keys", []):
                if item.get("client_id") and item.get("client_secret"):
                    key = SeededKey(
                        str(item["client_id"]),
                        str(item["client_secret"]),
                        str(item.get("name", "")),
                        [str(uri) for uri in item.get("redirect_uris", [])],
                    )
                    found[key.client_id] = key
        return list(found.values())

    def seeded_users(self) -> list[SeededUser]:
        found: dict[str, SeededUser] = {}
        for data in self._parsed():
            for item in data.get("users", []):
                user = SeededUser(str(item["login"]), str(item["password"]), str(item["name"]))
                found[user.login] = user
        return list(found.values())

    def _parsed(self) -> list[dict[str, Any]]:
        return [tomllib.loads(text) for text in self.seeds]
