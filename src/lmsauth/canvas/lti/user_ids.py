"""How LTI names a Canvas user (spec lti13.md 3.2, 6): the ``lti_id`` (a UUID: the launch's
``sub``, NRPS's ``user_id``, AGS's ``userId``) and the LTI 1.1 legacy id (40 hex characters).

Canvas stores a random ``lti_id`` per user; here both are derived from the user's random
``uuid``, so they are as stable and as opaque, and need no column: the id of a user never
changes, and nobody can compute it without the user's ``uuid``.
"""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.UUID("6f0c5a52-7f44-4e1c-9a4e-5b1f3c2d0e11")


def lti_user_id(user_uuid: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "lti_id:" + user_uuid))


def legacy_user_id(user_uuid: str) -> str:
    """``lti11_legacy_user_id``: Canvas's ``opaque_identifier_for(user)``, 40 hex characters."""
    return hashlib.sha1(("user:" + user_uuid).encode(), usedforsecurity=False).hexdigest()
