"""How LTI names a Canvas user (spec lti13.md 3.2, 6): the ``lti_id`` (a UUID: the launch's
``sub``, NRPS's ``user_id``, AGS's ``userId``) and the LTI 1.1 legacy id (40 hex characters).

Canvas stores a random ``lti_id`` per user; here it is derived from the user's own random
``uuid`` (a UUID 5), so it is as stable and as opaque and needs no column. The legacy id is
Canvas's ``opaque_identifier_for(user)``, ``canvas.tools.opaque_id`` of ``user_<id>``. A launch
must name users the same way (its ``sub`` and ``lti11_legacy_user_id``).
"""

from __future__ import annotations

import uuid

from lmsauth.canvas.tools import opaque_id


def lti_user_id(user_uuid: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lmsauth:lti_id:{user_uuid}"))


def legacy_user_id(secret_key: str, user_id: int) -> str:
    """``lti11_legacy_user_id``: 40 hex characters."""
    return opaque_id(secret_key, f"user_{user_id}")
