"""Base64url without padding (RFC 7515 section 2, RFC 4648 section 5), the encoding of JWTs.

``decode`` accepts only the canonical text of some bytes: the alphabet ``A-Za-z0-9-_``, no
padding, no whitespace, and the unused low bits of the last character zero, so that
``encode(decode(text)) == text``. Lenient decoders (Python's ``urlsafe_b64decode`` as PyJWT
calls it, Ruby's) map several texts to one value, which lets a caller present one signed value
under many spellings: anything that recognises a value by its text (a replay guard) must
decode with this first.
"""

from __future__ import annotations

import base64
import binascii
import re

_CANONICAL = re.compile(r"[A-Za-z0-9_-]*")


def encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def decode(text: str) -> bytes:
    """The bytes ``text`` encodes; ``ValueError`` unless it is their canonical encoding."""
    if not _CANONICAL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not canonical base64url") from exc
    if encode(data) != text.encode("ascii"):  # the last character's unused bits were not zero
        raise ValueError("not canonical base64url")
    return data
