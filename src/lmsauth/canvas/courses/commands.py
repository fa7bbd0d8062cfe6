"""``lmsauth course`` and ``lmsauth enrollment``: courses and who is in them, from the command
line. Mounted by ``cli.py``.

Same conventions as the rest of the CLI: each ``--json`` prints one JSON object on stdout;
errors go to stderr with exit status 1, and nothing is written. A course made here is
published (``available``) unless ``--unpublished``, so that its students see it at once; the
API makes it unpublished, as Canvas does. An enrollment made here is ``active`` unless
``--state invited``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.access_tokens.seeding import find_user_id
from lmsauth.canvas.admin import AdminError
from lmsauth.canvas.courses import service
from lmsauth.canvas.courses.models import ENROLLMENT_TYPES, Course, Enrollment
from lmsauth.canvas.courses.service import EnrollmentFilter
from lmsauth.canvas.pagination import PageRequest
from lmsauth.core.commands import run_in_transaction
from lmsauth.settings import Settings

T = TypeVar("T")
EVERYONE = PageRequest(1, 1_000_000)


def _run(work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = True) -> T:
    async def in_session(session: AsyncSession, _settings: Settings) -> T:
        return await work(session)

    return run_in_transaction(in_session, write=write, operator_errors=(AdminError,))


def course_summary(course: Course) -> dict[str, Any]:
    return {
        "id": course.id,
        "name": course.name,
        "course_code": course.course_code,
        "sis_course_id": course.sis_course_id,
        "workflow_state": service.api_state(course),
        "uuid": course.uuid,
        "lti_context_id": course.lti_context_id,
    }


def enrollment_summary(enrollment: Enrollment, login: str | None) -> dict[str, Any]:
    return {
        "id": enrollment.id,
        "course_id": enrollment.course_id,
        "user_id": enrollment.user_id,
        "login": login,
        "role": service.ROLE_NAMES[enrollment.type],
        "type": enrollment.type,
        "enrollment_state": enrollment.workflow_state,
    }


async def find_course(session: AsyncSession, raw: str) -> Course:
    course = await service.find_course(session, raw)
    if course is None:
        raise AdminError(f"no course with id {raw}")
    return course


@click.group("course")
def course() -> None:
    """Courses of the root account."""


@course.command("create")
@click.option("--name", required=True)
@click.option("--code", default=None, help="The course code (from the name when not given).")
@click.option("--sis-id", default=None, help="The course's SIS id, unique in the account.")
@click.option("--unpublished", is_flag=True, help="Leave it unpublished: students do not see it.")
@click.option("--json", "as_json", is_flag=True)
def course_create(name: str, code: str | None, sis_id: str | None, unpublished: bool, as_json: bool) -> None:
    """Create a course named NAME."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        made = await service.create_course(
            session, name=name, course_code=code, sis_course_id=sis_id, publish=not unpublished
        )
        return course_summary(made)

    data = _run(work)
    click.echo(
        json.dumps(data, sort_keys=True) if as_json else f"created course {data['id']} ({data['name']})"
    )


@course.command("list")
@click.option("--json", "as_json", is_flag=True)
def course_list(as_json: bool) -> None:
    """Every course that is not deleted, by name."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        courses, _total = await service.list_courses(session, EVERYONE)
        return [course_summary(found) for found in courses]

    courses = _run(work, write=False)
    if as_json:
        click.echo(json.dumps({"courses": courses}, sort_keys=True))
        return
    for found in courses:
        click.echo(f"{found['id']}\t{found['workflow_state']}\t{found['course_code']}\t{found['name']}")


@click.group("enrollment")
def enrollment() -> None:
    """Who is in a course, and in which role."""


@enrollment.command("create")
@click.option("--course", "course_id", required=True, help="The course's id (or sis_course_id:X).")
@click.option("--user", "login", required=True, help="The login of the person to enroll.")
@click.option("--role", required=True, type=click.Choice(list(ENROLLMENT_TYPES)))
@click.option("--state", default="active", type=click.Choice(["active", "invited", "inactive"]))
@click.option("--json", "as_json", is_flag=True)
def enrollment_create(course_id: str, login: str, role: str, state: str, as_json: bool) -> None:
    """Enroll USER in COURSE as ROLE (an existing enrollment of that role takes the state)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await find_course(session, course_id)
        user_id = await find_user_id(session, login)
        made = await service.enroll(session, found, user_id, ENROLLMENT_TYPES[role], state)
        return enrollment_summary(made, login)

    data = _run(work)
    text = f"enrolled {login} in course {data['course_id']} as {role} (enrollment {data['id']})"
    click.echo(json.dumps(data, sort_keys=True) if as_json else text)


@enrollment.command("list")
@click.option("--course", "course_id", required=True, help="The course's id (or sis_course_id:X).")
@click.option("--json", "as_json", is_flag=True)
def enrollment_list(course_id: str, as_json: bool) -> None:
    """The course's enrollments that are not deleted, by role and then name."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        found = await find_course(session, course_id)
        roster = await service.list_enrollments(
            session, found, EnrollmentFilter(), ("active", "invited", "inactive", "completed"), EVERYONE
        )
        return [
            enrollment_summary(row, person.login.unique_id if person.login else None)
            for row, person in roster.rows
        ]

    rows = _run(work, write=False)
    if as_json:
        click.echo(json.dumps({"enrollments": rows}, sort_keys=True))
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['role']}\t{row['enrollment_state']}\t{row['login']}")
