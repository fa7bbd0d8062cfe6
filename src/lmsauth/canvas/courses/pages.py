"""The course pages, server-rendered forms that work without JavaScript:

- ``GET /courses``: the signed-in person's courses (Canvas's "Courses" list);
- ``GET /courses/:course_id``: a course's name, code and people, for its members and account
  admins (the same rule as the API, ``service.access``); account admins get a form that
  enrolls a person by login, posted to ``POST /courses/:course_id/enroll_users``;
- ``GET``/``POST /accounts/self/courses``: the admin console's list of the account's courses
  and the form that creates one.

A person who is not signed in is sent to log in; one who may not see a page gets the
"Unauthorized" page. Every form posts the session's CSRF token; a refused form changes nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lmsauth.canvas import signed_in
from lmsauth.canvas.access_tokens.seeding import find_user_id
from lmsauth.canvas.admin import AdminError
from lmsauth.canvas.context import PAGES, SHARED_PAGES, CanvasContext
from lmsauth.canvas.courses import SECTION, service
from lmsauth.canvas.courses.gradebook_pages import gradebook_path
from lmsauth.canvas.courses.models import ENROLLMENT_TYPES, Course
from lmsauth.canvas.courses.service import CourseFilter, CourseInvalid, EnrollmentFilter, EnrollRefused
from lmsauth.canvas.lti.course_tools import lti_tools_for_course
from lmsauth.canvas.lti.launch import LTI_PAGES
from lmsauth.canvas.pagination import PageRequest
from lmsauth.canvas.signed_in import Viewer
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import templates

COURSE_PAGES = Path(__file__).parent / "pages"
MAX_LISTED = PageRequest(1, 1000)  # one page holds every course and person of a local server
ROLES = tuple(ENROLLMENT_TYPES)  # teacher, student, ta, designer, observer
PAGE_STATES = ("active", "invited")


class CoursePages:
    def __init__(self, ctx: CanvasContext) -> None:
        # The same context, with this package's pages looked up before Canvas's own (and the
        # LTI package's list of a course's tools, which the course page includes).
        self.ctx = dataclasses.replace(ctx, pages=templates(COURSE_PAGES, LTI_PAGES, PAGES, SHARED_PAGES))

    def _page(self, request: Request, who: Viewer, name: str, status: int = 200, **values: Any) -> Response:
        return signed_in.page(self.ctx, request, who, name, status, section=SECTION, **values)

    def _message(self, request: Request, who: Viewer, status: int, title: str, message: str) -> Response:
        return self._page(request, who, "message.html", status, title=title, message=message)

    @staticmethod
    def _notice(request: Request) -> str:
        return request.query_params.get("notice", "")[:200]

    # ------------------------------------------------------------------------ a person's courses

    async def my_courses(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            found, _total = await service.courses_of(session, who.user.id, CourseFilter(), MAX_LISTED)
            rows = [
                {"course": course, "state": service.api_state(course), "roles": _roles(enrollments)}
                for course, enrollments in found
            ]
            return self._page(request, who, "courses_mine.html", rows=rows)

    # ------------------------------------------------------------------------ one course

    async def _course_page(
        self,
        request: Request,
        session: AsyncSession,
        who: Viewer,
        course: Course,
        *,
        errors: list[str] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        allowed = await service.access(session, course, who.user.id, is_admin=who.is_admin)
        wanted = EnrollmentFilter(user_id=None if allowed.read_roster else who.user.id)
        roster = await service.list_enrollments(session, course, wanted, PAGE_STATES, MAX_LISTED)
        people = [
            {"person": person, "role": service.ROLE_NAMES[row.type], "state": row.workflow_state}
            for row, person in roster.rows
        ]
        return self._page(
            request,
            who,
            "course.html",
            status,
            course=course,
            state=service.api_state(course),
            people=people,
            lti_tools=await lti_tools_for_course(session, course),
            gradebook=gradebook_path(course.id),
            can_enroll=allowed.manage,
            roles=ROLES,
            errors=errors or [],
            values=values or {"role": "student", "state": "active"},
            notice=self._notice(request),
        )

    async def _readable(self, session: AsyncSession, request: Request) -> tuple[Viewer, Course] | Response:
        """The signed-in person and the course they may read, or the page that refuses them."""
        who = await signed_in.viewer(session, request)
        if who is None:
            return signed_in.to_login()
        course = await service.find_course(session, request.path_params["course_id"])
        if course is None:
            return self._message(request, who, 404, "Page Not Found", "There is no such course.")
        allowed = await service.access(session, course, who.user.id, is_admin=who.is_admin)
        if not allowed.read:
            return signed_in.not_authorized_page(self.ctx, request, who)
        return who, course

    async def course(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            found = await self._readable(session, request)
            if isinstance(found, Response):
                return found
            who, course = found
            return await self._course_page(request, session, who, course)

    async def enroll(self, request: Request) -> Response:
        """The course page's enroll form (account admins): a person by login, a role, a state."""
        async with self.ctx.db.session(write=True) as session:
            found = await self._readable(session, request)
            if isinstance(found, Response):
                return found
            who, course = found
            if not who.is_admin:
                return signed_in.not_authorized_page(self.ctx, request, who)
            form = await signed_in.checked_form(self.ctx, request, who, section=SECTION)
            if isinstance(form, Response):
                return form
            try:
                values = {
                    "login": (form.get("login") or "").strip(),
                    "role": form.get("role") or "",
                    "state": form.get("state") or "active",
                }
            except BadParameters as exc:
                return self._message(request, who, 400, "Bad request", exc.message)
            try:
                if values["role"] not in ENROLLMENT_TYPES:
                    raise AdminError(f"the role must be one of {', '.join(ROLES)}")
                if not values["login"]:
                    raise AdminError("give the login of the person to enroll")
                user_id = await find_user_id(session, values["login"])
                async with session.begin_nested():
                    await service.enroll(
                        session, course, user_id, ENROLLMENT_TYPES[values["role"]], values["state"]
                    )
            except (AdminError, EnrollRefused) as exc:
                return await self._course_page(
                    request, session, who, course, errors=[str(exc)], values=values, status=400
                )
            notice = urlencode({"notice": f"Enrolled {values['login']} as {values['role']}."})
            return RedirectResponse(f"/courses/{course.id}?{notice}", status_code=303)

    # ------------------------------------------------------------------------ the admin console

    async def _admin(self, session: AsyncSession, request: Request) -> Viewer | Response:
        who = await signed_in.viewer(session, request)
        if who is None:
            return signed_in.to_login()
        if not who.is_admin:
            return signed_in.not_authorized_page(self.ctx, request, who)
        return who

    async def _console(
        self,
        request: Request,
        session: AsyncSession,
        who: Viewer,
        *,
        errors: list[str] | None = None,
        values: dict[str, Any] | None = None,
        status: int = 200,
    ) -> Response:
        courses, total = await service.list_courses(session, MAX_LISTED)
        rows = [{"course": course, "state": service.api_state(course)} for course in courses]
        return self._page(
            request,
            who,
            "courses_account.html",
            status,
            rows=rows,
            total=total,
            errors=errors or [],
            values=values or {},
            notice=self._notice(request),
        )

    async def account_courses(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who = await self._admin(session, request)
            if isinstance(who, Response):
                return who
            return await self._console(request, session, who)

    async def create(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who = await self._admin(session, request)
            if isinstance(who, Response):
                return who
            form = await signed_in.checked_form(self.ctx, request, who, section=SECTION)
            if isinstance(form, Response):
                return form
            try:
                values: dict[str, Any] = {
                    "name": form.get("course[name]") or "",
                    "course_code": form.get("course[course_code]") or "",
                    "sis_course_id": form.get("course[sis_course_id]") or "",
                    "publish": form.get("publish") == "1",
                }
            except BadParameters as exc:
                return self._message(request, who, 400, "Bad request", exc.message)
            try:
                course = await service.create_course(
                    session,
                    name=values["name"],
                    course_code=values["course_code"],
                    sis_course_id=values["sis_course_id"],
                    publish=values["publish"],
                )
            except CourseInvalid as exc:
                messages = [f"{name}: {e['message']}" for name, found in exc.errors.items() for e in found]
                return await self._console(request, session, who, errors=messages, values=values, status=400)
            notice = urlencode({"notice": f"Created {course.name}."})
            return RedirectResponse(f"/courses/{course.id}?{notice}", status_code=303)


def _roles(enrollments: list[Any]) -> str:
    return ", ".join(service.ROLE_NAMES[row.type] for row in enrollments)
