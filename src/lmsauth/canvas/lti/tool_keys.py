"""An LTI tool's public keys (spec lti13.md 5.2): the one JWK on its developer key
(``public_jwk``, whose ``kid`` is not needed), or the JWK Set at its URL (``public_jwk_url``,
where the ``kid`` must match).

Fetching a tool's URL makes this server an HTTP client of whatever URL a key names, so:

- only ``http(s)``, no redirects followed, ``FETCH_TIMEOUT_SECONDS`` for the whole fetch and
  ``MAX_JWKS_BYTES`` of body at most;
- never to an address that is not public (loopback, private networks, link-local cloud
  metadata, ...) unless ``LMSAUTH_LTI_ALLOW_PRIVATE_JWK_URLS`` is on (the emulator turns it on
  by itself: its tools run on the developer's machine). The connection goes to the very
  address that was checked (the URL's host is kept in ``Host``, and for TLS in SNI and the
  certificate check through httpcore's ``sni_hostname`` extension), so a name that resolves
  to a public address when checked and to a private one when connected (DNS rebinding)
  cannot slip through;
- a fetched set is kept 5 minutes (Canvas's ``JWK_SET_CACHE_EXPIRATION``) in the shared store,
  so every instance reuses it; a ``kid`` the kept set lacks fetches it again (a tool that
  rotated its key), a path that only a client who failed authentication can take, and which
  ``core.ratelimit`` bounds per address.

Hand-written: the address check and pinning. httpx has no hook to vet the address it connects
to, and the libraries that do (advocate) wrap requests, synchronously.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from lmsauth.canvas.models import DeveloperKey
from lmsauth.core import network
from lmsauth.core.kv import Store

FETCH_TIMEOUT_SECONDS = 5.0
TIMEOUT = httpx.Timeout(FETCH_TIMEOUT_SECONDS)
MAX_JWKS_BYTES = 64 * 1024
CACHE_SECONDS = 300.0
ALGORITHM = "RS256"
# json-jwt's error when a JWK Set has no key with the JWT's ``kid`` (``with_jwk_support``),
# as Canvas prints it after "JWK Error: ".
KID_NOT_FOUND = "JSON::JWK::Set::KidNotFound"


class JwkError(Exception):
    """The tool's keys cannot be had; Canvas answers ``JWK Error: <message>``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoKey(Exception):
    """The key names neither a JWK nor a JWK URL, or its JWK is unusable: Canvas's
    ``JWS signature invalid.``"""


class ToolKeys:
    """Finds the key that verifies a tool's JWT; ``allow_private`` lets JWK URLs name
    addresses that are not public."""

    def __init__(self, store: Store, *, allow_private: bool) -> None:
        self.store = store
        self.allow_private = allow_private

    async def verification_key(self, key: DeveloperKey, kid: str | None) -> PyJWK:
        if key.public_jwk:
            try:
                return PyJWK(dict(key.public_jwk), algorithm=ALGORITHM)
            except PyJWKError as exc:
                raise NoKey from exc
        if not key.public_jwk_url:
            raise NoKey
        found = _with_kid(await self.jwk_set(key.public_jwk_url), kid)
        if found is None and kid is not None:
            found = _with_kid(await self.jwk_set(key.public_jwk_url, fresh=True), kid)
        if found is None:
            raise JwkError(KID_NOT_FOUND)
        try:
            return PyJWK(found, algorithm=ALGORITHM)
        except PyJWKError as exc:
            raise NoKey from exc

    async def jwk_set(self, url: str, *, fresh: bool = False) -> dict[str, Any]:
        name = "lti:jwks:" + hashlib.sha256(url.encode()).hexdigest()
        body = None if fresh else await self.store.get(name)
        if body is None:
            body = await fetch(url, allow_private=self.allow_private)
            parsed = _parse_set(body)
            await self.store.set(name, body, expires_in=CACHE_SECONDS)
            return parsed
        return _parse_set(body)


def _with_kid(jwk_set: dict[str, Any], kid: str | None) -> dict[str, Any] | None:
    if kid is None:
        return None
    for jwk in jwk_set["keys"]:
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            return jwk
    return None


def _parse_set(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JwkError("Invalid JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("keys"), list):
        raise JwkError("the document at the JWK URL is not a JWK Set")
    return parsed


async def fetch(url: str, *, allow_private: bool) -> bytes:
    """The body at ``url``, under the rules of the module docstring; ``JwkError`` otherwise."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise JwkError("the JWK URL must be an http or https URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise JwkError("the JWK URL has an invalid port") from None
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
            return await _fetch_pinned(parts, host, port, allow_private)
    except TimeoutError:
        raise JwkError(f"the JWK URL did not answer within {FETCH_TIMEOUT_SECONDS:g} seconds") from None


async def _fetch_pinned(parts: Any, host: str, port: int, allow_private: bool) -> bytes:
    try:
        addresses = await network.resolve(host, port)
    except OSError:
        raise JwkError(f"the JWK URL's host {host} does not resolve") from None
    if not addresses:
        raise JwkError(f"the JWK URL's host {host} does not resolve")
    if not allow_private and not all(network.is_public_address(address) for address in addresses):
        raise JwkError(f"the JWK URL's host {host} is not a public address")
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rpartition("@")[2], "Accept": "application/json"}
    try:
        async with (
            httpx.AsyncClient(
                follow_redirects=False, trust_env=False, timeout=FETCH_TIMEOUT_SECONDS
            ) as client,
            client.stream("GET", pinned, headers=headers, extensions={"sni_hostname": host}) as response,
        ):
            if response.status_code != 200:
                raise JwkError(f"the JWK URL answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwkError(f"the JWK Set is larger than {MAX_JWKS_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise JwkError(f"the JWK URL could not be fetched ({type(exc).__name__})") from None
