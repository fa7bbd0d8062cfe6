"""Which redirect URIs a developer key accepts, and how Canvas builds the redirect back.

Canvas (``DeveloperKey#redirect_domain_matches?``, spec 3.3): an exact match on the key's
list, else the legacy lenient rule (same scheme, the registered host or a subdomain of it;
path, port and query ignored). The strict profile allows exact matches only, with RFC 8252's
exception for loopback ports.

The lenient rule compares hosts, so it first makes sure a browser would go to that host: a URI
the WHATWG URL parser rejects (a port that is no number, ``localhost:5000.evil.com``) or reads
differently from ``urlsplit`` never matches. Its hosts are plain names (letters, digits, ``-``,
``_``; no percent-encoding, no punycode ``xn--`` label, whose validity only an IDNA library can
tell) or IP addresses, which match only themselves; anything else is matched only exactly, from
the key's list.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote_plus, urlsplit

OUT_OF_BAND = "urn:ietf:wg:oauth:2.0:oob"
LOOPBACK_HOSTS = {"127.0.0.1", "[::1]", "::1", "localhost"}


# The characters RFC 3986 allows in a URI. Ruby's ``URI.parse`` raises on anything else (a
# backslash, a space, a tab, non-ASCII), and Canvas treats that as "no match" (spec 3.3 rule 4).
# Python's ``urlsplit`` is laxer: it drops tabs and newlines and reads
# ``https://evil.example\@app.example`` as a URI on ``app.example``, which browsers send to
# ``evil.example``.
_RFC3986_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")


# After the last "@": a bracketed IPv6 address or a name, then an optional port of digits only.
# A second "@" is refused: RFC 3986 allows none in userinfo, and Ruby's ``URI.parse`` raises.
_HOST_AND_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]*)?")
_LABEL = re.compile(r"[a-z0-9_-]+")
# WHATWG's "ends in a number": such a host is parsed as an IPv4 address or refused.
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")


def _plain_host(host: str) -> bool:
    """A name or address that every WHATWG parser reads as it is written (lowercase)."""
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host)) == host
        except ValueError:
            return False
    labels = host.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            return False
    return all(_LABEL.fullmatch(label) and not label.startswith("xn--") for label in labels)


def _split(uri: str) -> tuple[str, str] | None:
    if not _RFC3986_CHARACTERS.fullmatch(uri):
        return None
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a port out of range)
    except ValueError:
        return None
    if not parts.scheme or not host or parts.netloc.count("@") > 1:
        return None
    if not _HOST_AND_PORT.fullmatch(parts.netloc.rpartition("@")[2]) or not _plain_host(host):
        return None
    return parts.scheme.lower(), host


def lenient_match(registered: str | None, requested: str) -> bool:
    """Canvas's legacy rule: same scheme, and the registered host or a subdomain of it."""
    if not registered:
        return False
    left, right = _split(registered), _split(requested)
    if left is None or right is None:
        return False
    (scheme, host), (req_scheme, req_host) = left, right
    # No subdomain of an IP address gets here: "1.127.0.0.1" is refused by ``_plain_host``.
    return scheme == req_scheme and (req_host == host or req_host.endswith("." + host))


def _loopback_port_match(registered: str, requested: str) -> bool:
    """RFC 8252 section 7.3: a loopback redirect may use any port; all else must be equal."""
    if not _RFC3986_CHARACTERS.fullmatch(requested):
        return False
    try:
        reg, req = urlsplit(registered), urlsplit(requested)
        reg_host, req_host = reg.hostname, req.hostname
        reg.port, req.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return False
    return (
        reg.scheme == req.scheme == "http"
        and reg_host is not None
        and reg_host in LOOPBACK_HOSTS
        and reg_host == req_host
        and (reg.path, reg.query, reg.fragment) == (req.path, req.query, req.fragment)
    )


def redirect_uri_allowed(
    requested: str | None,
    redirect_uris: list[str],
    legacy_redirect_uri: str | None,
    *,
    strict: bool,
) -> bool:
    """Spec 3.3 (canvas profile) or exact matching (strict profile)."""
    if not requested:
        return False
    if requested == OUT_OF_BAND:
        # Canvas accepts out-of-band for every key; the strict profile only where registered.
        return not strict or OUT_OF_BAND in redirect_uris
    if requested in redirect_uris:
        return True
    if strict:
        return any(_loopback_port_match(uri, requested) for uri in redirect_uris)
    return lenient_match(legacy_redirect_uri, requested)


def to_query(params: dict[str, str | None]) -> str:
    """Rails ``to_query``: pairs sorted by key, CGI escaping (a space becomes ``+``)."""
    return "&".join(
        f"{quote_plus(key)}={quote_plus(value)}" for key, value in sorted(params.items()) if value is not None
    )


def final_redirect(redirect_uri: str, params: dict[str, str | None], auth_path: str) -> str:
    """Where Canvas sends the browser back: the client's URI, or the auth page for out-of-band."""
    if redirect_uri == OUT_OF_BAND:
        return f"{auth_path}?{to_query(params)}"
    joiner = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{joiner}{to_query(params)}"
