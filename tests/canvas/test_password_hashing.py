"""Password checks leave the event loop free (issue 15, finding 2): argon2id runs in worker
threads, at most ``password_hash_slots()`` at a time, while the server keeps answering.

Shown without timing: a spy over the argon2 hasher records, for each verification, whether
an event loop runs in its thread and how many verifications overlap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from lmsauth.core import secrets
from tests.conftest import Directory, LiveServer, run
from tests.flows import form_token

CONCURRENT_LOGINS = 8
SLOTS = 2


class SpyHasher:
    """Delegates to the test suite's cheap hasher and records where and how often it runs.
    Each verification lingers a little, so that logins sent together overlap in it."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.calls: list[tuple[int, bool]] = []  # (thread id, an event loop runs in that thread)

    def _record(self) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        with self.lock:
            self.calls.append((threading.get_ident(), on_loop))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)

    def verify(self, password_hash: str, password: str) -> bool:
        self._record()
        try:
            time.sleep(0.05)  # widens the overlap; nothing here is asserted about time
            return self.hasher.verify(password_hash, password)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        self._record()
        try:
            return self.hasher.hash(password)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> SpyHasher:
    hasher = SpyHasher(secrets._hasher)
    monkeypatch.setattr(secrets, "_hasher", hasher)
    monkeypatch.setattr(secrets, "password_hash_slots", lambda: SLOTS)
    return hasher


def test_failed_logins_are_checked_off_the_event_loop_within_the_bound(
    live_server: LiveServer, directory: Directory, spy: SpyHasher
) -> None:
    user = directory.user()
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=30) as browser:
        token = form_token(browser.get("/login/canvas").text)
        cookies = dict(browser.cookies)

    def fail(index: int) -> int:
        # Known and unknown login names alike; each its own, so no account is delayed.
        login = user.login if index == 0 else f"nobody-{index}@example.edu"
        with httpx.Client(base_url=live_server.url, cookies=cookies, timeout=30) as other:
            response = other.post(
                "/login/canvas",
                data={
                    "authenticity_token": token,
                    "pseudonym_session[unique_id]": login,
                    "pseudonym_session[password]": "not the password",
                },
            )
        return response.status_code

    spy.calls.clear()
    with ThreadPoolExecutor(CONCURRENT_LOGINS) as pool:
        statuses = list(pool.map(fail, range(CONCURRENT_LOGINS)))
    assert statuses == [400] * CONCURRENT_LOGINS
    assert len(spy.calls) == CONCURRENT_LOGINS  # the unknown names cost a verification too
    assert not any(on_loop for _, on_loop in spy.calls), "argon2 ran in an event loop's thread"
    assert 1 <= spy.most_at_once <= SLOTS


def test_hashing_for_an_admin_operation_runs_off_the_event_loop(directory: Directory, spy: SpyHasher) -> None:
    """``admin.upsert_user`` (seed files, the emulator's seed endpoint) hashes in a worker too."""
    directory.user(login="new@example.edu", password="a new password")
    directory.user(login="new@example.edu", password="another password")  # verify, then hash again
    assert len(spy.calls) == 3
    assert not any(on_loop for _, on_loop in spy.calls)


def test_verify_in_worker_keeps_the_dummy_hash_for_unknown_users(spy: SpyHasher) -> None:
    async def check() -> list[Any]:
        stored = await secrets.hash_password_in_worker("pw")
        return [
            await secrets.verify_password_in_worker(stored, "pw"),
            await secrets.verify_password_in_worker(stored, "wrong"),
            await secrets.verify_password_in_worker(None, "pw"),
        ]

    assert run(check()) == [True, False, False]
    assert len(spy.calls) == 4  # the unknown user's check verified the dummy hash
