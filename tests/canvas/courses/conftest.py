"""What the course tests share: an account admin, a teacher, two students and an outsider,
each with a manual access token, and a published course with the teacher and one student
enrolled, made the way the CLI and seed files make them (``courses.service``)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from lmsauth.canvas.courses import service
from lmsauth.canvas.courses.models import Course, Enrollment
from tests.canvas.access_tokens.support import NOT_FOUND, UNAUTHORIZED, manual_token
from tests.canvas.support import Caller
from tests.conftest import Directory, Person, run

__all__ = ["NOT_FOUND", "UNAUTHORIZED", "Caller"]


def caller(directory: Directory, login: str, name: str, **extra: Any) -> Caller:
    person = directory.user(login=login, name=name, **extra)
    return Caller(person, manual_token(directory, person))


@pytest.fixture
def admin(directory: Directory) -> Caller:
    return caller(directory, "admin@example.edu", "Ada Admin", admin=True)


@pytest.fixture
def teacher(directory: Directory) -> Caller:
    return caller(directory, "teacher@example.edu", "Terry Teacher")


@pytest.fixture
def student(directory: Directory) -> Caller:
    return caller(directory, "student@example.edu", "Sam Student")


@pytest.fixture
def outsider(directory: Directory) -> Caller:
    return caller(directory, "outsider@example.edu", "Olly Outsider")


def in_session(directory: Directory, work: Any) -> Any:
    return run(directory._in_session(work))


def make_course(directory: Directory, name: str = "Biology 101", **extra: Any) -> int:
    async def work(session: Any) -> int:
        course = await service.create_course(session, name=name, **{"publish": True, **extra})
        return course.id

    result: int = in_session(directory, work)
    return result


def enroll(directory: Directory, course_id: int, person: Person, kind: str, state: str = "active") -> int:
    async def work(session: Any) -> int:
        course = await session.get(Course, course_id)
        return (await service.enroll(session, course, person.id, kind, state)).id

    result: int = in_session(directory, work)
    return result


@pytest.fixture
def course(directory: Directory, teacher: Caller, student: Caller) -> int:
    course_id = make_course(directory, sis_course_id="BIO-101")
    enroll(directory, course_id, teacher.person, "TeacherEnrollment")
    enroll(directory, course_id, student.person, "StudentEnrollment")
    return course_id


def rows(directory: Directory) -> list[Any]:
    """Every course and enrollment column a request could change."""
    courses = directory.query(
        select(
            Course.id, Course.name, Course.course_code, Course.sis_course_id, Course.workflow_state
        ).order_by(Course.id)
    )
    enrollments = directory.query(
        select(
            Enrollment.id,
            Enrollment.course_id,
            Enrollment.user_id,
            Enrollment.type,
            Enrollment.workflow_state,
        ).order_by(Enrollment.id)
    )
    return [courses, enrollments]
