"""Courses and enrollments: creating, finding and listing them, who may see what, and Canvas's
JSON for them. The API, the pages, the CLI and seed files all go through these functions,
inside their caller's transaction.

Who may do what (Canvas's default permissions, as far as this server has roles):

- read a course (``GET /courses/:id``, its page): account admins, and its members. A member is
  a user with an ``active``, ``invited`` or ``completed`` enrollment; students and observers
  only once the course is published (``available`` or ``completed``), as Canvas hides an
  unpublished course from them. Nobody reads a deleted course.
- list a course's enrollments (Canvas's ``read_roster``): account admins and its teachers,
  TAs, designers and students; an observer sees only their own enrollments.
- create courses and enrollments: account admins (Canvas's ``manage_courses`` and
  ``can_create_enrollment_for?``).

Validation raises ``CourseInvalid`` (Canvas's model errors, by attribute) or ``EnrollRefused``
(the Enrollments API's messages) before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.admin import AdminError, root_account
from lmsauth.canvas.courses.models import ENROLLMENT_TYPES, Course, Enrollment
from lmsauth.canvas.models import Login, User
from lmsauth.canvas.pagination import PageRequest
from lmsauth.canvas.people import users
from lmsauth.canvas.people.users import Person
from lmsauth.core import clock

MAX_STRING = 255  # Canvas's maximum_string_length
DEFAULT_NAME = "Unnamed Course"  # Course#assert_defaults
ROLE_NAMES: dict[str, str] = {kind: short for short, kind in ENROLLMENT_TYPES.items()}
STAFF_TYPES = frozenset({"TeacherEnrollment", "TaEnrollment", "DesignerEnrollment"})
ROSTER_TYPES = STAFF_TYPES | {"StudentEnrollment"}
UNPUBLISHED = ("created", "claimed")
PUBLISHED = ("available", "completed")
MEMBER_STATES = ("active", "invited", "completed")
CURRENT_STATES = ("active", "invited")
API_ENROLLMENT_STATES = ("active", "invited", "inactive")


class CourseInvalid(AdminError):
    """A course's fields fail Canvas's model validation: ``errors`` by attribute, each
    ``{"attribute", "type", "message"}`` as Canvas renders ``@course.errors``."""

    def __init__(self, errors: dict[str, list[dict[str, str]]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{name}: {error['message']}" for name, found in errors.items() for error in found)
        )


class EnrollRefused(AdminError):
    """An enrollment the Enrollments API refuses with 400 ``{"message": ...}``."""


# ---------------------------------------------------------------------------- courses


def api_state(course: Course) -> str:
    """Canvas's ``Course#api_state``: ``created`` and ``claimed`` show as ``unpublished``."""
    return "unpublished" if course.workflow_state in UNPUBLISHED else course.workflow_state


def default_course_code(name: str) -> str:
    """Canvas's ``Course#assert_defaults`` code for a course given none: the name's first word,
    and the first later word holding a digit ("Biology 101 Fall" gives "Biology 101").
    Ruby's ``split(/\\s/)`` drops trailing empty fields, which ``re.split`` keeps."""
    words = re.split(r"\s", name)
    while words and words[-1] == "":
        words.pop()
    if not words:
        return ""
    numbered = next((word for word in words[1:] if re.search(r"\d", word)), None)
    return " ".join(word for word in (words[0], numbered) if word is not None)


def _too_long(errors: dict[str, list[dict[str, str]]], attribute: str, value: str | None) -> None:
    if value is not None and len(value) > MAX_STRING:
        errors.setdefault(attribute, []).append(
            users.field_error(attribute, "too_long", f"is too long (maximum is {MAX_STRING} characters)")
        )


def _sis_taken(sis_course_id: str) -> dict[str, str]:
    message = f'SIS ID "{sis_course_id}" is already in use'
    return users.field_error("sis_source_id", message, message)


async def create_course(
    session: AsyncSession,
    *,
    name: str | None,
    course_code: str | None = None,
    sis_course_id: str | None = None,
    publish: bool = False,
) -> Course:
    """Canvas's ``POST /accounts/:id/courses``: a blank name is "Unnamed Course", a missing
    code is derived from the name, the course is ``created`` (unpublished) unless ``publish``
    (the API's ``offer``). A SIS id is unique in the account."""
    name = None if name is None or not name.strip() else name.replace("\r", "")
    name = name or DEFAULT_NAME
    course_code = course_code or None
    sis_course_id = sis_course_id or None
    errors: dict[str, list[dict[str, str]]] = {}
    _too_long(errors, "name", name)
    _too_long(errors, "course_code", course_code)
    _too_long(errors, "sis_source_id", sis_course_id)
    if sis_course_id is not None and "sis_source_id" not in errors:
        taken = await session.scalar(select(Course.id).where(Course.sis_course_id == sis_course_id))
        if taken is not None:
            errors["sis_source_id"] = [_sis_taken(sis_course_id)]
    if errors:
        raise CourseInvalid(errors)
    account = await root_account(session)
    course = Course(
        account_id=account.id,
        name=name,
        course_code=course_code if course_code is not None else default_course_code(name),
        sis_course_id=sis_course_id,
        workflow_state="available" if publish else "created",
    )
    session.add(course)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same SIS id, written by a concurrent request since our check
        assert sis_course_id is not None
        raise CourseInvalid({"sis_source_id": [_sis_taken(sis_course_id)]}) from None
    return course


async def find_course(session: AsyncSession, raw: str) -> Course | None:
    """A course that is not deleted, by local or global id, or ``sis_course_id:X`` (Canvas's
    ``api_find``)."""
    if raw.startswith("sis_course_id:"):
        found: Course | None = await session.scalar(
            select(Course).where(Course.sis_course_id == raw.removeprefix("sis_course_id:"))
        )
    else:
        course_id = users.parse_id(raw)
        found = await session.get(Course, course_id) if course_id is not None else None
    return found if found is not None and found.workflow_state != "deleted" else None


async def list_courses(session: AsyncSession, asked: PageRequest) -> tuple[list[Course], int]:
    """The account's courses that are not deleted, by name: the console's and the CLI's list."""
    live = Course.workflow_state != "deleted"
    total = await session.scalar(select(func.count()).select_from(Course).where(live))
    rows = await session.scalars(
        select(Course).where(live).order_by(Course.name, Course.id).offset(asked.offset).limit(asked.per_page)
    )
    return list(rows), int(total or 0)


def _visible_to_member() -> ColumnElement[bool]:
    """An enrollment that makes its user a member who sees the course (module docstring)."""
    return and_(
        Enrollment.workflow_state.in_(MEMBER_STATES),
        Course.workflow_state != "deleted",
        or_(Course.workflow_state.in_(PUBLISHED), Enrollment.type.in_(STAFF_TYPES)),
    )


@dataclass(frozen=True, slots=True)
class CourseFilter:
    """``GET /api/v1/courses``'s ``enrollment_type`` and ``enrollment_state``."""

    enrollment_type: str | None = None
    enrollment_state: str | None = None

    def condition(self) -> ColumnElement[bool]:
        """Canvas lists the courses of current enrollments by default (active or invited, the
        course not concluded); ``active``, ``invited_or_pending`` and ``completed`` narrow that."""
        clauses: list[ColumnElement[bool]] = [_visible_to_member()]
        if self.enrollment_type is not None:
            clauses.append(
                Enrollment.type == ENROLLMENT_TYPES.get(self.enrollment_type, self.enrollment_type)
            )
        if self.enrollment_state == "completed":
            clauses.append(
                or_(Enrollment.workflow_state == "completed", Course.workflow_state == "completed")
            )
        else:
            states = {"active": ("active",), "invited_or_pending": ("invited",)}.get(
                self.enrollment_state or "", CURRENT_STATES
            )
            clauses += [Enrollment.workflow_state.in_(states), Course.workflow_state != "completed"]
        return and_(*clauses)


async def courses_of(
    session: AsyncSession, user_id: int, wanted: CourseFilter, asked: PageRequest
) -> tuple[list[tuple[Course, list[Enrollment]]], int]:
    """One page of the user's courses (by name), each with the user's enrollments in it."""
    where = and_(Enrollment.user_id == user_id, wanted.condition())
    ids = select(Enrollment.course_id).join(Course, Course.id == Enrollment.course_id).where(where)
    total = await session.scalar(
        select(func.count(func.distinct(Enrollment.course_id)))
        .select_from(Enrollment)
        .join(Course, Course.id == Enrollment.course_id)
        .where(where)
    )
    courses = list(
        await session.scalars(
            select(Course)
            .where(Course.id.in_(ids))
            .order_by(Course.name, Course.id)
            .offset(asked.offset)
            .limit(asked.per_page)
        )
    )
    enrollments = await session.scalars(
        select(Enrollment)
        .join(Course, Course.id == Enrollment.course_id)
        .where(where, Enrollment.course_id.in_([course.id for course in courses]))
        .order_by(Enrollment.id)
    )
    by_course: dict[int, list[Enrollment]] = {course.id: [] for course in courses}
    for enrollment in enrollments:
        by_course[enrollment.course_id].append(enrollment)
    return [(course, by_course[course.id]) for course in courses], int(total or 0)


async def own_enrollments(session: AsyncSession, course: Course, user_id: int) -> list[Enrollment]:
    """The user's current enrollments in the course (``course.current_enrollments`` of theirs)."""
    rows = await session.scalars(
        select(Enrollment)
        .where(
            Enrollment.course_id == course.id,
            Enrollment.user_id == user_id,
            Enrollment.workflow_state.in_(CURRENT_STATES),
        )
        .order_by(Enrollment.id)
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class Access:
    """What a user may do in one course."""

    read: bool
    read_roster: bool
    manage: bool


async def access(session: AsyncSession, course: Course, user_id: int, *, is_admin: bool) -> Access:
    """What the user (an account admin or not) may do in the course (module docstring)."""
    if is_admin:
        return Access(read=True, read_roster=True, manage=True)
    types = set(
        await session.scalars(
            select(Enrollment.type)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.course_id == course.id, Enrollment.user_id == user_id, _visible_to_member())
        )
    )
    return Access(read=bool(types), read_roster=bool(types & ROSTER_TYPES), manage=False)


# ---------------------------------------------------------------------------- enrollments


@dataclass(frozen=True, slots=True)
class EnrollmentFilter:
    """``GET /api/v1/courses/:id/enrollments``'s ``type[]``, ``state[]`` and ``user_id``."""

    types: Sequence[str] = ()
    states: Sequence[str] = ()
    user_id: int | None = None


@dataclass
class Roster:
    rows: list[tuple[Enrollment, Person]] = field(default_factory=list)
    total: int = 0


async def list_enrollments(
    session: AsyncSession,
    course: Course,
    wanted: EnrollmentFilter,
    default_states: Sequence[str],
    asked: PageRequest,
) -> Roster:
    """One page of the course's enrollments of live users, ordered as Canvas orders them: by
    type, then the user's sortable name, then id."""
    clauses: list[ColumnElement[bool]] = [
        Enrollment.course_id == course.id,
        Enrollment.workflow_state.in_(wanted.states or default_states),
        User.workflow_state != "deleted",
    ]
    if wanted.types:
        clauses.append(Enrollment.type.in_(wanted.types))
    if wanted.user_id is not None:
        clauses.append(Enrollment.user_id == wanted.user_id)
    where = and_(*clauses)
    total = await session.scalar(
        select(func.count()).select_from(Enrollment).join(User, User.id == Enrollment.user_id).where(where)
    )
    found = await session.execute(
        select(Enrollment, User)
        .join(User, User.id == Enrollment.user_id)
        .where(where)
        .order_by(Enrollment.type, func.lower(User.sortable_name), Enrollment.id)
        .offset(asked.offset)
        .limit(asked.per_page)
    )
    pairs = [(row, user) for row, user in found.all()]
    logins = await _first_logins(session, [user.id for _, user in pairs])
    return Roster([(row, Person(user, logins.get(user.id))) for row, user in pairs], int(total or 0))


async def _first_logins(session: AsyncSession, user_ids: list[int]) -> dict[int, Login]:
    if not user_ids:
        return {}
    rows = await session.scalars(
        select(Login).where(Login.user_id.in_(user_ids), Login.workflow_state != "deleted").order_by(Login.id)
    )
    first: dict[int, Login] = {}
    for login in rows:
        first.setdefault(login.user_id, login)
    return first


async def enroll(
    session: AsyncSession,
    course: Course,
    user_id: int,
    enrollment_type: str,
    state: str = "active",
    *,
    keep_active: bool = False,
) -> Enrollment:
    """Canvas's ``Course#enroll_user``: the user's enrollment of that type in the course, made
    or (if they had one, even deleted) brought to ``state``; with ``keep_active`` (no state
    asked for), an active enrollment stays active. A concluded course takes none."""
    if enrollment_type not in ROLE_NAMES:
        raise EnrollRefused("Invalid type")
    if state not in API_ENROLLMENT_STATES:
        raise EnrollRefused(f"Invalid enrollment_state {state}")
    if course.workflow_state == "completed":
        raise EnrollRefused("Can't add an enrollment to a concluded course.")
    existing = await session.scalar(
        select(Enrollment).where(
            Enrollment.course_id == course.id,
            Enrollment.user_id == user_id,
            Enrollment.type == enrollment_type,
        )
    )
    if existing is not None:
        if existing.workflow_state != state and not (keep_active and existing.workflow_state == "active"):
            existing.workflow_state = state
            existing.updated_at = clock.now()
        await session.flush()
        return existing
    enrollment = Enrollment(course_id=course.id, user_id=user_id, type=enrollment_type, workflow_state=state)
    session.add(enrollment)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same enrollment, made by a concurrent request since our look
        session.expunge(enrollment)
        again = await session.scalar(
            select(Enrollment).where(
                Enrollment.course_id == course.id,
                Enrollment.user_id == user_id,
                Enrollment.type == enrollment_type,
            )
        )
        assert again is not None
        return again
    return enrollment


# ---------------------------------------------------------------------------- JSON


def course_json(course: Course, enrollments: list[Enrollment] | None, *, show_sis: bool) -> dict[str, Any]:
    """Canvas's ``course_json`` (``Api::V1::Course``) for the fields this server keeps; the
    SIS fields only for those who may read them (account admins). ``enrollments`` are the
    caller's, as ``GET /courses`` and ``GET /courses/:id`` show them."""
    body: dict[str, Any] = {
        "id": course.id,
        "name": course.name,
        "account_id": course.account_id,
        "root_account_id": course.account_id,
        "uuid": course.uuid,
        "course_code": course.course_code,
        "created_at": users.iso(course.created_at),
        "start_at": None,
        "end_at": None,
        "is_public": False,
        "public_syllabus": False,
        "public_syllabus_to_auth": False,
        "is_public_to_auth_users": False,
        "hide_final_grades": False,
        "restrict_enrollments_to_course_dates": False,
        "workflow_state": api_state(course),
    }
    if show_sis:
        body["sis_course_id"] = course.sis_course_id
        body["integration_id"] = None
    if enrollments is not None:
        body["enrollments"] = [
            {
                "type": ROLE_NAMES[row.type],
                "role": row.type,
                "user_id": row.user_id,
                "enrollment_state": row.workflow_state,
                "limit_privileges_to_course_section": False,
            }
            for row in enrollments
        ]
    return body


def enrollment_json(
    enrollment: Enrollment, person: Person, course: Course, *, show_sis: bool
) -> dict[str, Any]:
    """Canvas's ``enrollment_json`` with its ``user`` (the fields this server keeps)."""
    user, login = person.user, person.login
    shown_user: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "created_at": users.iso(user.created_at),
        "sortable_name": user.sortable_name,
        "short_name": user.short_name,
        "login_id": login.unique_id if login else None,
    }
    body: dict[str, Any] = {
        "id": enrollment.id,
        "user_id": enrollment.user_id,
        "course_id": enrollment.course_id,
        "type": enrollment.type,
        "created_at": users.iso(enrollment.created_at),
        "updated_at": users.iso(enrollment.updated_at),
        "associated_user_id": None,
        "start_at": None,
        "end_at": None,
        "course_section_id": None,
        "root_account_id": course.account_id,
        "limit_privileges_to_course_section": False,
        "enrollment_state": enrollment.workflow_state,
        "role": enrollment.type,
        "user": shown_user,
    }
    if show_sis:
        body["sis_course_id"] = course.sis_course_id
        body["sis_user_id"] = login.sis_user_id if login else None
        shown_user["sis_user_id"] = body["sis_user_id"]
    return body
