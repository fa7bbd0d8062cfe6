"""Courses in seed files (``[[courses]]``), each with its enrollments by login, so that a reset
restores them.

A seeded course is named by its ``sis_id`` when it has one, else by its ``name``: loading the
seed again (an emulator reset, a second ``lmsauth seed``) finds the same course, brings its code
and published state in line with the seed, and enrolls the same people again (an enrollment
that was changed meanwhile takes the seed's state back). The course keeps its ids, and with
them its LTI context id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.access_tokens.seeding import find_user_id
from lmsauth.canvas.admin import AdminError
from lmsauth.canvas.courses import service
from lmsauth.canvas.courses.models import ENROLLMENT_TYPES, Course
from lmsauth.core import clock

_COURSE_FIELDS = {"name", "code", "sis_id", "published", "enrollments"}
_ENROLLMENT_FIELDS = {"login", "role", "state"}


def _text(item: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise AdminError(f"courses: {name} must be a non-empty string")
    return value


async def _existing(session: AsyncSession, name: str, sis_id: str | None) -> Course | None:
    where = Course.sis_course_id == sis_id if sis_id is not None else Course.name == name
    found: Course | None = await session.scalar(
        select(Course).where(where, Course.workflow_state != "deleted").order_by(Course.id).limit(1)
    )
    return found


async def _course(session: AsyncSession, item: dict[str, Any]) -> Course:
    name = _text(item, "name", required=True)
    assert name is not None
    code, sis_id = _text(item, "code"), _text(item, "sis_id")
    published = item.get("published", True)
    if not isinstance(published, bool):
        raise AdminError("courses: published must be true or false")
    course = await _existing(session, name, sis_id)
    if course is None:
        return await service.create_course(
            session, name=name, course_code=code, sis_course_id=sis_id, publish=published
        )
    course.name = name
    course.course_code = code if code is not None else service.default_course_code(name)
    state = "available" if published else "created"
    if course.workflow_state != state:
        course.workflow_state = state
    course.updated_at = clock.now()
    return course


async def load_courses(session: AsyncSession, items: list[Any]) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise AdminError("courses must be a list of tables")
        unknown = set(item) - _COURSE_FIELDS
        if unknown:
            raise AdminError(f"courses: unknown fields {', '.join(sorted(unknown))}")
        course = await _course(session, item)
        enrollments = item.get("enrollments", [])
        if not isinstance(enrollments, list):
            raise AdminError("courses: enrollments must be a list of tables")
        enrolled: list[dict[str, Any]] = []
        for entry in enrollments:
            if not isinstance(entry, dict) or set(entry) - _ENROLLMENT_FIELDS:
                raise AdminError("courses: each enrollment is a table of login, role and state")
            login = _text(entry, "login", required=True)
            role = entry.get("role")
            assert login is not None
            if role not in ENROLLMENT_TYPES:
                raise AdminError(f"courses: role must be one of {', '.join(ENROLLMENT_TYPES)}")
            state = entry.get("state", "active")
            if not isinstance(state, str):
                raise AdminError("courses: state must be a string")
            user_id = await find_user_id(session, login)
            row = await service.enroll(session, course, user_id, ENROLLMENT_TYPES[role], state)
            enrolled.append(
                {"id": row.id, "login": login, "role": role, "enrollment_state": row.workflow_state}
            )
        loaded.append(
            {
                "id": course.id,
                "name": course.name,
                "course_code": course.course_code,
                "workflow_state": service.api_state(course),
                "enrollments": enrolled,
            }
        )
    return loaded
