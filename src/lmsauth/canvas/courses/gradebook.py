"""A course's small gradebook, which the Assignment and Grade Services write to (spec
lti13.md 7, 8): assignments, their LTI line items, each student's submission, and the result
a tool last posted for it.

- ``Assignment``: ``points_possible``, ``grading_type`` (``points`` or ``pass_fail``),
  ``submission_types`` (``external_tool`` for a tool's, ``none``), ``workflow_state``
  (``published``, ``unpublished``, ``deleted``).
- ``LineItem`` (Canvas's ``Lti::LineItem``): one tool's (its developer key's) column for an
  assignment. ``coupled`` marks the line item Canvas made together with its assignment (an
  assignment a deep-linking response created), which a tool may not delete.
- ``Submission``: one student's grade on one assignment (``score``, ``grade``).
- ``Result`` (``Lti::Result``): what the tool posted for one student on one line item, the
  answer of the results service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock
from lmsauth.core.db import Base, UTCDateTime

GRADING_TYPES = ("points", "pass_fail")
ASSIGNMENT_STATES = ("published", "unpublished", "deleted")


class Assignment(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    points_possible: Mapped[float | None] = mapped_column(Float, nullable=True)
    grading_type: Mapped[str] = mapped_column(String(20), default="points")
    submission_types: Mapped[str] = mapped_column(String(255), default="external_tool")
    workflow_state: Mapped[str] = mapped_column(String(20), default="published")
    unlock_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)


class LineItem(Base):
    __tablename__ = "lti_line_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    developer_key_id: Mapped[int] = mapped_column(
        ForeignKey("developer_keys.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(255))
    score_maximum: Mapped[float] = mapped_column(Float)
    resource_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_link_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    start_date_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_date_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Canvas's extensions kept as sent (``https://canvas.instructure.com/lti/submission_type``).
    extensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    coupled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("assignment_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    grade: Mapped[str | None] = mapped_column(String(255), nullable=True)
    submission_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    workflow_state: Mapped[str] = mapped_column(String(20), default="unsubmitted")
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    graded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)


class Result(Base):
    __tablename__ = "lti_results"
    __table_args__ = (UniqueConstraint("line_item_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_item_id: Mapped[int] = mapped_column(ForeignKey("lti_line_items.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), nullable=True
    )
    result_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    result_maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    activity_progress: Mapped[str] = mapped_column(String(20))
    grading_progress: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)


__all__ = ["ASSIGNMENT_STATES", "GRADING_TYPES", "Assignment", "LineItem", "Result", "Submission"]
