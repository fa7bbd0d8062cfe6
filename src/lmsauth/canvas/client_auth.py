"""Who is calling the token and revocation endpoints: client id and secret, from the body
(``client_id``, ``client_secret``) or HTTP Basic, as Canvas reads them (spec 5.2): a value in
the body wins over the header.

RFC 6749 section 2.3.1 says a client form-url-encodes its id and secret before Base64 in the
Basic header; Canvas's clients (and authlib, requests-oauthlib) send them raw, while
openid-client and oauth4webapi encode them, so a secret with ``-`` arrives as ``%2D``. Both
readings of the header are tried: for a secret without encoded characters they are the same
string, so a Canvas-style client pays nothing.

The Basic header is decoded here by hand (Starlette has no parser for it, and the library
ones raise where Canvas simply sees no credentials).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_plus

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from lmsauth.canvas import tokens
from lmsauth.canvas.errors import basic_client_challenge, client_rate_limited, invalid_client, unknown_client
from lmsauth.canvas.models import DeveloperKey, local_id
from lmsauth.core.errors import WireError
from lmsauth.core.ratelimit import RateLimits
from lmsauth.core.web import Params, client_ip


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str | None
    # The secret as sent, then (from a Basic header only) its form-url-decoded reading.
    secrets: tuple[str, ...]
    basic: bool  # whether the header supplied anything used: its scheme is then the challenge

    @property
    def has_secret(self) -> bool:
        return bool(self.secrets) and bool(self.secrets[0])

    def secret_matches(self, key: tokens.SecretHolder) -> bool:
        return any(tokens.client_secret_matches(key, secret) for secret in self.secrets)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """HTTP Basic ``client_id:secret``, split at the first colon, exactly as sent."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):  # ValueError: non-ASCII header text
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def client_credentials(request: Request, params: Params) -> ClientCredentials:
    """The caller's claimed client id and its secret candidates (``BadParameters`` on a
    repeated parameter, as every reader of ``params``)."""
    client_id = params.get("client_id")
    secret = params.get("client_secret")
    basic = basic_credentials(request)
    used_basic = False
    candidates: list[str] = []
    if client_id is None and basic is not None:
        client_id, used_basic = _decoded(basic[0]), True
    if secret is not None:
        candidates.append(secret)
    elif basic is not None:
        used_basic = True
        candidates.append(basic[1])
        decoded = _decoded(basic[1])
        if decoded != basic[1]:
            candidates.append(decoded)
    return ClientCredentials(client_id, tuple(candidates), used_basic)


def _decoded(text: str) -> str:
    """RFC 6749 section 2.3.1's form-url-encoding undone; Canvas's ids are digits, unchanged."""
    return unquote_plus(text) if ("%" in text or "+" in text) else text


class ClientKey(Protocol):
    """What authenticating a client reads of its developer key (a ``DeveloperKey`` row, or
    the record ``canvas.exchange`` reads on the token endpoint's hot path)."""

    @property
    def id(self) -> int: ...
    @property
    def secret_digest(self) -> str: ...
    @property
    def public_client(self) -> bool: ...


class ClientGate:
    """The rate limits around one client authentication (``core.ratelimit.ClientAuthLimits``):
    an address past its failure limit is refused before anything is checked (Canvas has no
    such limit); a failure counts against the address and the client it named (by parsed id,
    so ``1``, ``01`` and the global id are one client); only a request that proved it is the
    client spends that client's budget, so outsiders can never throttle it."""

    def __init__(self, limits: RateLimits, request: Request, credentials: ClientCredentials) -> None:
        self.limits = limits
        self.address = client_ip(request)
        parsed = tokens.parse_client_id(credentials.client_id)
        self.claimed = None if parsed is None else f"canvas:{local_id(parsed)}"

    def check_address(self) -> None:
        refused = self.limits.client_auth.refused(self.address)
        if refused is not None:
            raise client_rate_limited(refused.retry_after)

    async def spend(self, key: ClientKey) -> None:
        """The request proved it is ``key``'s client: one of that client's budget."""
        decision = await self.limits.client_auth.authenticated(f"canvas:{key.id}")
        if not decision.allowed:
            raise client_rate_limited(decision.retry_after)

    async def failed(self, error: WireError) -> WireError:
        """``error`` for a failed client authentication, or 429 once its address (or the
        client it named) is past its failure limit."""
        decision = await self.limits.client_auth.failed(self.address, self.claimed)
        return error if decision.allowed else client_rate_limited(decision.retry_after)


async def authenticate_client(
    session: AsyncSession,
    credentials: ClientCredentials,
    gate: ClientGate,
    *,
    public_allowed: bool,
    strict: bool,
) -> tuple[DeveloperKey, bool]:
    """``check_client`` of the active key the caller names, read through ``session``."""
    key = await tokens.find_active_key(session, credentials.client_id)
    exempt = await check_client(key, credentials, gate, public_allowed=public_allowed, strict=strict)
    assert key is not None  # check_client refused it otherwise
    return key, exempt


async def check_client(
    key: ClientKey | None,
    credentials: ClientCredentials,
    gate: ClientGate,
    *,
    public_allowed: bool,
    strict: bool,
) -> bool:
    """Whether the caller, who names ``key`` (None: no active key of that id), proved it is
    that client without its secret (a public client where ``public_allowed``: its grant must
    then prove it, and the caller spends its budget once the grant is good). Otherwise the
    ``WireError`` to answer (spec 5.2): 401 ``invalid_client`` "unknown client" or "invalid
    client", counted by ``gate``; in the strict profile a failed Basic authentication carries
    the ``Basic`` challenge (RFC 6749 5.2). A client that proved itself by its secret spends
    one of its budget here."""

    def refused(error: WireError) -> WireError:
        return basic_client_challenge(error) if strict and credentials.basic else error

    if key is None:
        raise await gate.failed(refused(unknown_client()))
    exempt = public_allowed and key.public_client and not credentials.has_secret
    if not exempt:
        if not credentials.secret_matches(key):
            raise await gate.failed(refused(invalid_client()))
        await gate.spend(key)
    return exempt
