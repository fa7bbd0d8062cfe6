"""Facts about network addresses that more than one guard needs: who is calling (loopback),
and where this server may call out to (``is_public_address``, so that a URL a client gives us,
such as an LTI tool's JWK set, cannot make the server reach its own network)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket


def is_loopback(host: str | None) -> bool:
    """An address (or ``localhost``) of this machine: the only callers trusted with the
    emulator's control API and, without a token, with ``/metrics``."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def is_public_address(address: str) -> bool:
    """An address on the public internet (``ipaddress``'s ``is_global``, and no multicast):
    not loopback, private (RFC 1918, unique local), link-local (cloud metadata services sit at
    169.254.169.254), shared (100.64/10), reserved or unspecified. An IPv4-mapped IPv6 address
    is judged as the IPv4 address it carries."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal is itself), through the event loop's
    resolver; ``OSError`` when the name does not resolve."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))
