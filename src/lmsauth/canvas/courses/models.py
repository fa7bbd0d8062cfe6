"""Canvas's ``courses`` and ``enrollments`` tables, as far as the APIs, LTI and DAP need them.

A course's ``lti_context_id`` is Canvas's ``Lti::Asset.opaque_identifier_for(course)``: 40 hex
characters, fixed at creation, the ``context.id`` of LTI launches and the tail of a course
deployment's id (spec lti13.md 1.2). An enrollment is one role of one user in one course;
Canvas names the role by its enrollment ``type`` (``StudentEnrollment`` ...).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock
from lmsauth.core.db import Base, UTCDateTime

# The short role names of the CLI and seed file, and Canvas's enrollment type for each.
ENROLLMENT_TYPES: dict[str, str] = {
    "teacher": "TeacherEnrollment",
    "student": "StudentEnrollment",
    "ta": "TaEnrollment",
    "designer": "DesignerEnrollment",
    "observer": "ObserverEnrollment",
}
# Canvas's course workflow states; the API shows ``created``/``claimed`` as ``unpublished``.
COURSE_STATES = ("created", "claimed", "available", "completed", "deleted")
ENROLLMENT_STATES = ("active", "invited", "inactive", "completed", "deleted")


def opaque_identifier() -> str:
    """A new ``lti_context_id``: 40 hex characters, as Canvas's are."""
    return secrets.token_hex(20)


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    course_code: Mapped[str] = mapped_column(String(255))
    sis_course_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    workflow_state: Mapped[str] = mapped_column(String(20), default="available")
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=opaque_identifier)
    lti_context_id: Mapped[str] = mapped_column(String(40), unique=True, default=opaque_identifier)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("course_id", "user_id", "type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(30))
    workflow_state: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)


__all__ = [
    "COURSE_STATES",
    "ENROLLMENT_STATES",
    "ENROLLMENT_TYPES",
    "Course",
    "Enrollment",
    "opaque_identifier",
]
