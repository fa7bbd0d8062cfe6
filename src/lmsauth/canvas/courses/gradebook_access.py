"""Who may see a course's gradebook, for its page and its API: the course's teachers and TAs
(an active enrollment) and account admins see every grade ("graders"); a student sees their
own; nobody else sees any."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.courses.models import Course, Enrollment
from lmsauth.canvas.courses.service import find_course
from lmsauth.canvas.models import User
from lmsauth.canvas.people import USER_IS_USABLE
from lmsauth.canvas.people.users import parse_id

GRADERS = ("TeacherEnrollment", "TaEnrollment")
STUDENTS = ("StudentEnrollment", "StudentViewEnrollment")


@dataclass(frozen=True, slots=True)
class Access:
    grader: bool
    student: bool

    @property
    def any(self) -> bool:
        return self.grader or self.student


async def access(session: AsyncSession, course: Course, user_id: int, is_admin: bool) -> Access:
    roles = set(
        await session.scalars(
            select(Enrollment.type).where(
                Enrollment.course_id == course.id,
                Enrollment.user_id == user_id,
                Enrollment.workflow_state == "active",
            )
        )
    )
    return Access(grader=is_admin or bool(roles & set(GRADERS)), student=bool(roles & set(STUDENTS)))


async def students(session: AsyncSession, course: Course) -> list[User]:
    """The course's active students, by sortable name."""
    found = await session.scalars(
        select(User)
        .join(Enrollment, Enrollment.user_id == User.id)
        .where(
            Enrollment.course_id == course.id,
            Enrollment.type.in_(STUDENTS),
            Enrollment.workflow_state == "active",
            USER_IS_USABLE,
        )
        .distinct()
        .order_by(User.sortable_name, User.id)
    )
    return list(found)


__all__ = ["GRADERS", "STUDENTS", "Access", "access", "find_course", "parse_id", "students"]
