"""the gradebook the LTI Assignment and Grade Services write to

Revision ID: 0010
Revises: 0009

- assignments: a course's assignments (points, grading type, submission types, state, dates).
- lti_line_items: a tool's (developer key's) line item for an assignment (spec lti13.md 7.2).
- submissions: one student's grade on one assignment.
- lti_results: what a tool last posted for one student on one line item (spec 7.3, 7.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lmsauth.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DATE = lmsauth.core.db.UTCDateTime


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", _DATE(), nullable=False),
        sa.Column("updated_at", _DATE(), nullable=False),
    ]


def _indexes(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("points_possible", sa.Float(), nullable=True),
        sa.Column("grading_type", sa.String(length=20), nullable=False),
        sa.Column("submission_types", sa.String(length=255), nullable=False),
        sa.Column("workflow_state", sa.String(length=20), nullable=False),
        sa.Column("unlock_at", _DATE(), nullable=True),
        sa.Column("due_at", _DATE(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("assignments", "course_id")
    op.create_table(
        "lti_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("developer_key_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=True),
        sa.Column("tag", sa.String(length=255), nullable=True),
        sa.Column("resource_link_id", sa.String(length=255), nullable=True),
        sa.Column("start_date_time", _DATE(), nullable=True),
        sa.Column("end_date_time", _DATE(), nullable=True),
        sa.Column("extensions", sa.JSON(), nullable=False),
        sa.Column("coupled", sa.Boolean(), server_default=sa.false(), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["developer_key_id"], ["developer_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("lti_line_items", "assignment_id", "course_id", "developer_key_id", "resource_link_id")
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("grade", sa.String(length=255), nullable=True),
        sa.Column("submission_type", sa.String(length=40), nullable=True),
        sa.Column("workflow_state", sa.String(length=20), nullable=False),
        sa.Column("submitted_at", _DATE(), nullable=True),
        sa.Column("graded_at", _DATE(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("assignment_id", "user_id"),
    )
    _indexes("submissions", "assignment_id", "user_id")
    op.create_table(
        "lti_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("result_score", sa.Float(), nullable=True),
        sa.Column("result_maximum", sa.Float(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("activity_progress", sa.String(length=20), nullable=False),
        sa.Column("grading_progress", sa.String(length=20), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(["line_item_id"], ["lti_line_items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("line_item_id", "user_id"),
    )
    _indexes("lti_results", "line_item_id", "user_id")


def downgrade() -> None:
    op.drop_table("lti_results")
    op.drop_table("submissions")
    op.drop_table("lti_line_items")
    op.drop_table("assignments")
