"""Rate limits, counted in the shared store (``core.kv``): in Redis when one is configured, so
every instance counts together, else in this process.

Three shapes, each one store call for a request that is let through:

- ``FixedWindow``: at most ``limit`` hits per ``window`` seconds, the window opening at the
  first hit (``Store.incr``). Per client at the token endpoints (counted only for requests
  that authenticated as that client, ``ClientAuthLimits``), per session at Commons, per
  client address at Canvas's ``/login/oauth2/auth``.
- ``LeakyBucket``: Canvas's request throttle (``lib/canvas/request_throttle.rb``): every
  request adds its cost, the bucket leaks ``outflow`` units a second, and a bucket at its high
  water mark refuses (``Store.leak``). Per access token on the Canvas API.
- ``FailureWindow``: a fixed window of failures that, once over its limit, refuses the
  subject's further requests before anything is checked (``refused``), from this process's
  memory of the store's answer: a request that is let through costs no store call.
- ``LoginThrottle``: password attempts per account and per client address: a growing delay,
  then a temporary lock that looks the same whether or not the account exists.

Windows, buckets and locks are timed by ``core.clock`` (through ``core.kv``): moving the test or
emulator clock forward past a window lets a limited client through again; moving it back never
keeps one limited longer than the window's real length. Only ``StorePause``, a wait on a dead
store, is timed by the monotonic clock.

When the store does not answer, the first two let requests through uncounted (``StorePause``):
they protect capacity, and a Redis outage must not become an outage of the Canvas API, the
token endpoints and Commons. The login throttle guards low-entropy passwords, so it does not:
its ``StoreUnavailable`` reaches ``core.outage``, and the form answers 503 until Redis is back.

Hand-written rather than the ``limits`` package: ``limits`` counts through storage classes of
its own (its own Redis connection pools and key scheme), so it would bypass ``Store``, with its
namespace, its timeouts and the ``StoreUnavailable`` that ``core.outage`` turns into 503. It has
no leaky bucket with a fractional remaining quota either, and a login lock is not a rate limit
it models. Each shape here is a few lines over one store call.

Subjects of fixed windows and logins (client ids, login names, addresses) enter keys only as
digests: they may be long, chosen by the caller, or personal data.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from lmsauth.core.kv import Store, StoreUnavailable

log = logging.getLogger("lmsauth.ratelimit")


@dataclass(frozen=True, slots=True)
class Decision:
    """One request's verdict. ``remaining`` is what is left of the quota after it (None when
    limits are off); ``retry_after`` the whole seconds to wait when it is refused."""

    allowed: bool
    remaining: float | None = None
    retry_after: int = 0


UNLIMITED = Decision(True)


class StorePause:
    """After the store failed to answer, rate limits skip it for ``seconds``: a dead or hung
    Redis then costs one bounded wait per process per pause, not one per request."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self._until = 0.0

    @property
    def active(self) -> bool:
        return time.monotonic() < self._until

    def start(self, error: StoreUnavailable) -> Decision:
        if not self.active:
            log.warning("rate limits are not counted for %.0f s: %s", self.seconds, error)
        self._until = time.monotonic() + self.seconds
        return UNLIMITED


def _key(name: str, subject: str) -> str:
    return f"rl:{name}:{hashlib.sha256(subject.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


def _whole_seconds(seconds: float) -> int:
    """``Retry-After`` is a whole number of seconds (RFC 9110 10.2.3); round up, at least 1."""
    return max(1, math.ceil(seconds))


class FixedWindow:
    """At most ``limit`` hits per subject in a window of ``window`` seconds from its first hit."""

    def __init__(
        self,
        store: Store,
        name: str,
        limit: int,
        window: float,
        *,
        enabled: bool = True,
        pause: StorePause | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.limit = limit
        self.window = window
        self.enabled = enabled
        self.pause = pause or StorePause()

    async def hit(self, subject: str) -> Decision:
        if not self.enabled or self.pause.active:
            return UNLIMITED
        key = _key(self.name, subject)
        try:
            count = await self.store.incr(key, 1, expires_in=self.window)
            if count <= self.limit:
                return Decision(True, float(self.limit - count))
            left = await self.store.expires_in(key)
        except StoreUnavailable as exc:
            return self.pause.start(exc)
        return Decision(False, 0.0, _whole_seconds(self.window if left is None else left))


class FailureWindow:
    """A ``FixedWindow`` of failures whose subject, once over the limit, is refused at once for
    the rest of the window (``refused``), before its next request is checked.

    The refusal is remembered in this process from the store's answer to a failure, so the
    check costs no store call, and a request that succeeds never touches the store. Another
    instance learns it from that subject's next failure there: past the limit, a subject gets
    at most one more checked attempt per instance in a window. At most ``remembered`` subjects
    are held (the oldest go first); one that is dropped is refused again at its next failure.
    """

    remembered = 4096

    def __init__(self, window: FixedWindow) -> None:
        self.window = window
        self._refused_until: dict[str, float] = {}

    def refused(self, subject: str) -> Decision | None:
        """The refusal of a subject over its limit, or None; in this process's memory only."""
        if not self._refused_until or not self.window.enabled:
            return None
        key = _key(self.window.name, subject)
        until = self._refused_until.get(key)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._refused_until[key]
            return None
        return Decision(False, 0.0, _whole_seconds(left))

    async def hit(self, subject: str) -> Decision:
        decision = await self.window.hit(subject)
        if not decision.allowed:
            if len(self._refused_until) >= self.remembered:
                now = time.monotonic()
                self._refused_until = {k: t for k, t in self._refused_until.items() if t > now}
                while len(self._refused_until) >= self.remembered:
                    del self._refused_until[next(iter(self._refused_until))]
            self._refused_until[_key(self.window.name, subject)] = time.monotonic() + decision.retry_after
        return decision

    def forget(self) -> None:
        """Drop every remembered refusal (the store was emptied)."""
        self._refused_until.clear()


class ClientAuthLimits:
    """The token endpoints' limits on client authentication (``/login/oauth2/token``,
    ``/ids/auth/login``). Client ids are public, so what outsiders do with one must never
    spend the real client's budget:

    - ``requests``: the request budget of a client, counted only for requests that proved
      they are that client (one store call, the whole cost of a request let through);
    - ``failures_per_address``: failed authentications from one address; past the limit the
      address is refused before its credentials are checked, right or wrong, for the rest of
      the window (``FailureWindow``): this is what bounds one caller's guessing;
    - ``failures_per_client``: failed authentications naming one client, from anywhere. Past
      the limit only *failures* are refused (429 instead of 401); a request that proves the
      client still goes through. Refusing it too would let anybody lock any client out, since
      nothing tells the real client from a guesser before the secret is checked. Secrets are
      random (256 bits), so what this bounds is not guessing but the noise: a misconfigured
      deployment or a sprayer is told to back off.

    Subjects name a client by its parsed, canonical id (``canvas:<key id>``,
    ``identity:<client id>``), never by the text a caller sent, so the spellings of one id
    share one budget.
    """

    def __init__(
        self, requests: FixedWindow, failures_per_address: FailureWindow, failures_per_client: FixedWindow
    ) -> None:
        self.requests = requests
        self.failures_per_address = failures_per_address
        self.failures_per_client = failures_per_client

    def refused(self, address: str) -> Decision | None:
        """Before anything is checked: the refusal of an address past its failure limit."""
        return self.failures_per_address.refused(address)

    async def authenticated(self, client: str) -> Decision:
        """A request proved it is ``client``: spend one of its budget."""
        return await self.requests.hit(client)

    async def failed(self, address: str, client: str | None) -> Decision:
        """A request from ``address`` failed to prove it is ``client`` (None: it named no
        client this server could parse). Refused when either count is over its limit."""
        decisions = [await self.failures_per_address.hit(address)]
        if client is not None:
            decisions.append(await self.failures_per_client.hit(client))
        refused = [decision for decision in decisions if not decision.allowed]
        if not refused:
            return decisions[0]
        return max(refused, key=lambda decision: decision.retry_after)


class LeakyBucket:
    """Canvas's throttle: each hit adds ``cost``; the level leaks ``outflow`` a second and never
    exceeds ``maximum``; at ``high_water_mark`` or above the bucket is full and refuses.

    It runs on every API call, so its subject enters the key as it is: pass a short value that
    is no secret (a token's row id), never what the caller presented.

    Canvas adds a 50-unit "pre-flight" cost before a request and settles it to the measured cost
    (CPU plus database seconds) after, two Redis calls. Here each request adds one fixed cost up
    front, one store call on a hot path. ``remaining`` is Canvas's ``X-Rate-Limit-Remaining``:
    the high water mark less the level, negative while the bucket is over it.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        high_water_mark: float,
        maximum: float,
        outflow: float,
        cost: float,
        enabled: bool = True,
        pause: StorePause | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self._prefix = f"rl:{name}:"
        self.pause = pause or StorePause()
        self.high_water_mark = high_water_mark
        self.maximum = maximum
        self.outflow = outflow
        self.cost = cost
        self.enabled = enabled

    async def hit(self, subject: str) -> Decision:
        if not self.enabled or self.pause.active:
            return UNLIMITED
        try:
            level = await self.store.leak(self._prefix + subject, self.cost, self.outflow, self.maximum)
        except StoreUnavailable as exc:
            return self.pause.start(exc)
        remaining = self.high_water_mark - level
        if remaining > 0:
            return Decision(True, remaining)
        # Until the level is far enough below the mark for one more request to fit.
        return Decision(False, remaining, _whole_seconds((self.cost - remaining) / self.outflow))


@dataclass(frozen=True, slots=True)
class LoginVerdict:
    """``locked_for`` > 0: refuse without checking the password, for that many more seconds.
    Otherwise wait ``delay`` seconds, then check it."""

    locked_for: int = 0
    delay: float = 0.0


class LoginThrottle:
    """Password attempts per account (login name) and per client address.

    An attempt is counted before its password is checked, so parallel guesses cannot slip past
    the count. Past ``delay_after`` (``ip_delay_after``) attempts in ``lock_seconds``, each
    further one waits ``delay`` seconds, doubled each time up to ``max_delay``; past
    ``lock_after`` (``ip_lock_after``) the account (address) is locked for ``lock_seconds``.
    Attempts are counted for any login name, existing or not, so a lock says nothing about
    whether the account exists. A success clears its account's count (not its address's,
    which one attacker's own account could otherwise keep clearing).
    """

    def __init__(
        self,
        store: Store,
        *,
        delay_after: int,
        lock_after: int,
        ip_delay_after: int,
        ip_lock_after: int,
        delay: float,
        max_delay: float,
        lock_seconds: float,
        enabled: bool = True,
    ) -> None:
        self.store = store
        self.delay_after = delay_after
        self.lock_after = lock_after
        self.ip_delay_after = ip_delay_after
        self.ip_lock_after = ip_lock_after
        self.delay = delay
        self.max_delay = max_delay
        self.lock_seconds = lock_seconds
        self.enabled = enabled

    def _keys(self, address: str, account: str) -> tuple[str, str, str, str]:
        account = account.strip().lower()
        return (
            _key("login-account", account),
            _key("login-account-lock", account),
            _key("login-ip", address),
            _key("login-ip-lock", address),
        )

    def _backoff(self, beyond: int) -> float:
        if beyond <= 0:
            return 0.0
        return float(min(self.max_delay, self.delay * 2 ** min(beyond - 1, 30)))

    async def attempt(self, address: str, account: str) -> LoginVerdict:
        """Count an attempt to sign in as ``account`` from ``address``, and say how to treat it."""
        if not self.enabled:
            return LoginVerdict()
        count, lock, ip_count, ip_lock = self._keys(address, account)
        locked = max(await self.store.expires_in(lock) or 0.0, await self.store.expires_in(ip_lock) or 0.0)
        if locked > 0:
            return LoginVerdict(locked_for=_whole_seconds(locked))
        tries = await self.store.incr(count, 1, expires_in=self.lock_seconds)
        ip_tries = await self.store.incr(ip_count, 1, expires_in=self.lock_seconds)
        locking: list[tuple[str, str]] = []
        if tries > self.lock_after:
            locking.append((count, lock))
        if ip_tries > self.ip_lock_after:
            locking.append((ip_count, ip_lock))
        for counter, lock_key in locking:
            await self.store.set(lock_key, b"1", expires_in=self.lock_seconds)
            await self.store.delete(counter)
        if locking:
            return LoginVerdict(locked_for=_whole_seconds(self.lock_seconds))
        return LoginVerdict(
            delay=max(self._backoff(tries - self.delay_after), self._backoff(ip_tries - self.ip_delay_after))
        )

    async def succeeded(self, address: str, account: str) -> None:
        """The password was right: the account starts afresh; the address's attempt is undone."""
        if not self.enabled:
            return
        count, _, ip_count, _ = self._keys(address, account)
        await self.store.delete(count)
        await self.store.incr(ip_count, -1, expires_in=self.lock_seconds)

    async def not_attempted(self, address: str, account: str) -> None:
        """The form was refused before any password was checked (a bad CSRF token): uncount it."""
        if not self.enabled:
            return
        count, _, ip_count, _ = self._keys(address, account)
        await self.store.incr(count, -1, expires_in=self.lock_seconds)
        await self.store.incr(ip_count, -1, expires_in=self.lock_seconds)


class RateLimitSettings(Protocol):
    """The ``LMSAUTH_RATE_LIMIT*`` settings (``lmsauth.settings.Settings`` has them)."""

    rate_limits: bool
    rate_limit_api_high_water_mark: float
    rate_limit_api_maximum: float
    rate_limit_api_outflow: float
    rate_limit_api_request_cost: float
    rate_limit_client_requests: int
    rate_limit_client_window_seconds: float
    rate_limit_client_failures_per_address: int
    rate_limit_client_failures_per_client: int
    rate_limit_client_failure_window_seconds: float
    rate_limit_session_requests: int
    rate_limit_session_window_seconds: float
    rate_limit_authorize_requests: int
    rate_limit_authorize_window_seconds: float
    rate_limit_login_delay_after: int
    rate_limit_login_lock_after: int
    rate_limit_login_ip_delay_after: int
    rate_limit_login_ip_lock_after: int
    rate_limit_login_delay_seconds: float
    rate_limit_login_max_delay_seconds: float
    rate_limit_login_lock_seconds: float


class RateLimits:
    """Every limit of one server, over its store; with ``LMSAUTH_RATE_LIMITS=off`` each check
    answers at once without touching the store."""

    def __init__(self, store: Store, settings: RateLimitSettings) -> None:
        on = settings.rate_limits
        pause = StorePause()
        self.per_token = LeakyBucket(
            store,
            "token",
            high_water_mark=settings.rate_limit_api_high_water_mark,
            maximum=settings.rate_limit_api_maximum,
            outflow=settings.rate_limit_api_outflow,
            cost=settings.rate_limit_api_request_cost,
            enabled=on,
            pause=pause,
        )
        self.per_client = FixedWindow(
            store,
            "client",
            settings.rate_limit_client_requests,
            settings.rate_limit_client_window_seconds,
            enabled=on,
            pause=pause,
        )
        self.client_auth = ClientAuthLimits(
            self.per_client,
            FailureWindow(
                FixedWindow(
                    store,
                    "client-failures-ip",
                    settings.rate_limit_client_failures_per_address,
                    settings.rate_limit_client_failure_window_seconds,
                    enabled=on,
                    pause=pause,
                )
            ),
            FixedWindow(
                store,
                "client-failures",
                settings.rate_limit_client_failures_per_client,
                settings.rate_limit_client_failure_window_seconds,
                enabled=on,
                pause=pause,
            ),
        )
        self.per_session = FixedWindow(
            store,
            "session",
            settings.rate_limit_session_requests,
            settings.rate_limit_session_window_seconds,
            enabled=on,
            pause=pause,
        )
        self.authorize = FixedWindow(
            store,
            "authorize",
            settings.rate_limit_authorize_requests,
            settings.rate_limit_authorize_window_seconds,
            enabled=on,
            pause=pause,
        )
        self.login = LoginThrottle(
            store,
            delay_after=settings.rate_limit_login_delay_after,
            lock_after=settings.rate_limit_login_lock_after,
            ip_delay_after=settings.rate_limit_login_ip_delay_after,
            ip_lock_after=settings.rate_limit_login_ip_lock_after,
            delay=settings.rate_limit_login_delay_seconds,
            max_delay=settings.rate_limit_login_max_delay_seconds,
            lock_seconds=settings.rate_limit_login_lock_seconds,
            enabled=on,
        )

    def forget(self) -> None:
        """The store was emptied (an emulator reset): forget what this process remembers of it."""
        self.client_auth.failures_per_address.forget()
