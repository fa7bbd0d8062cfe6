"""The resource links that deep linking makes in a course (Canvas's ``Lti::ResourceLink``).

A link is one ``ltiResourceLink`` content item a tool returned (spec lti13.md 8): its URL,
title and custom parameters, launched later as an ``LtiResourceLinkRequest`` whose
``resource_link.id`` is the link's ``uuid``. An item that asked for a gradebook column keeps
that request in ``line_item`` (``{"scoreMaximum", "label"?, "resourceId"?, "tag"?}``); the
gradebook's line items and assignments are made from it by the AGS side.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock
from lmsauth.core.db import Base, UTCDateTime


def _uuid() -> str:
    return str(uuid.uuid4())


class LtiResourceLink(Base):
    __tablename__ = "lti_resource_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=_uuid)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    external_tool_id: Mapped[int] = mapped_column(
        ForeignKey("external_tools.id", ondelete="CASCADE"), index=True
    )
    placement: Mapped[str | None] = mapped_column(String(40), nullable=True)
    title: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    line_item: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    workflow_state: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)


__all__ = ["LtiResourceLink"]
