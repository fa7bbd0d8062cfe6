"""Facts about network addresses that more than one guard needs."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """An address (or ``localhost``) of this machine: the only callers trusted with the
    emulator's control API and, without a token, with ``/metrics``."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"
