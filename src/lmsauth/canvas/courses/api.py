"""Canvas's Courses and Enrollments APIs, as far as canvasapi and LTI need them, behind
``CanvasApi.protected``:

- ``GET /api/v1/courses``: the caller's courses (``enrollment_type``, ``enrollment_state``),
  each with the caller's enrollments in it;
- ``GET /api/v1/courses/:id``: a course its members and account admins may read;
- ``POST /api/v1/accounts/:account_id/courses``: ``course[name]``, ``course[course_code]``,
  ``course[sis_course_id]``, ``offer`` (publish at once), ``enroll_me`` (account admins);
- ``GET /api/v1/courses/:course_id/enrollments``: ``type[]``, ``state[]``, ``user_id``;
- ``POST /api/v1/courses/:course_id/enrollments``: ``enrollment[user_id]``,
  ``enrollment[type]`` or ``enrollment[role]``, ``enrollment[enrollment_state]`` (account
  admins).

Lists are paged the Canvas way (``canvas.pagination``). Order of checks, as Canvas's: the
course or account (404), the Enrollments API's parameter errors (400 ``{"message"}``), the
caller's right (401 ``unauthorized``), then the user named (404).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lmsauth.canvas.accounts import find_account
from lmsauth.canvas.bearer import Bearer
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.courses import service
from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.courses.service import CourseFilter, CourseInvalid, EnrollmentFilter, EnrollRefused
from lmsauth.canvas.errors import not_found, unauthorized
from lmsauth.canvas.pagination import page_request, paginate
from lmsauth.canvas.people import users
from lmsauth.core.errors import WireError
from lmsauth.core.web import Params

ADMIN_DEFAULT_STATES = ("active", "invited", "inactive")  # ``all_active_or_pending``
MEMBER_DEFAULT_STATES = ("active", "invited")  # ``active_or_pending``


def create_errors(message: str) -> WireError:
    """The Enrollments API's ``render_create_errors``: 400 ``{"message": "..."}``."""
    return WireError(400, {"message": message})


def _values(params: Params, name: str) -> list[str]:
    """An array parameter, given as ``name[]`` or plain ``name`` (Rails reads both)."""
    return params.get_all(f"{name}[]") + params.get_all(name)


class CoursesApi:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    def _page(self, request: Request, body: list[dict[str, Any]], asked: Any, total: int) -> Response:
        return paginate(JSONResponse(body), request, self.ctx.settings.public_url, asked, total)

    @staticmethod
    async def _course(session: Any, request: Request) -> Course:
        course = await service.find_course(session, request.path_params["course_id"])
        if course is None:
            raise not_found()
        return course

    async def list_courses(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/courses: the courses of the caller's enrollments, by name."""
        wanted = CourseFilter(params.get("enrollment_type"), params.get("enrollment_state"))
        asked = page_request(params)
        async with self.ctx.db.session() as session:
            found, total = await service.courses_of(session, bearer.user.id, wanted, asked)
        show_sis = bearer.user.is_admin
        body = [service.course_json(course, rows, show_sis=show_sis) for course, rows in found]
        return self._page(request, body, asked, total)

    async def show_course(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/courses/:id, with the caller's current enrollments in it."""
        async with self.ctx.db.session() as session:
            course = await self._course(session, request)
            allowed = await service.access(session, course, bearer.user.id, is_admin=bearer.user.is_admin)
            if not allowed.read:
                raise unauthorized()
            mine = await service.own_enrollments(session, course, bearer.user.id)
        return JSONResponse(service.course_json(course, mine, show_sis=bearer.user.is_admin))

    async def create_course(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """POST /api/v1/accounts/:account_id/courses (account admins)."""
        try:
            async with self.ctx.db.session(write=True) as session:
                if await find_account(session, request.path_params["account_id"]) is None:
                    raise not_found()
                if not bearer.user.is_admin:
                    raise unauthorized()
                course = await service.create_course(
                    session,
                    name=params.get("course[name]"),
                    course_code=params.get("course[course_code]"),
                    sis_course_id=params.get("course[sis_course_id]"),
                    publish=bool(params.get("offer")),
                )
                if (params.get("enroll_me") or "") == "true":
                    await service.enroll(session, course, bearer.user.id, "TeacherEnrollment", "active")
                body = service.course_json(course, None, show_sis=True)
        except CourseInvalid as exc:
            raise WireError(400, {"errors": exc.errors}) from None
        return JSONResponse(body)

    async def list_enrollments(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/courses/:course_id/enrollments: Canvas's ``course_index_enrollments``.
        Those who may read the roster see everyone's (account admins and teachers, TAs and
        designers inactive ones too); anyone else only their own, with ``user_id`` of
        themself, or (an observer) without it."""
        types = _values(params, "type")
        states = _values(params, "state")
        raw_user = params.get("user_id")
        asked = page_request(params)
        async with self.ctx.db.session() as session:
            course = await self._course(session, request)
            allowed = await service.access(session, course, bearer.user.id, is_admin=bearer.user.is_admin)
            user_id = None
            if raw_user is not None:
                user_id = bearer.user.id if raw_user == "self" else users.parse_id(raw_user)
                if user_id is None or await users.find_person(session, user_id) is None:
                    raise not_found()
            if user_id == bearer.user.id:
                defaults: tuple[str, ...] = service.CURRENT_STATES
            elif allowed.read_roster:
                staff = allowed.manage or await self._is_staff(session, course, bearer.user.id)
                defaults = ADMIN_DEFAULT_STATES if staff else MEMBER_DEFAULT_STATES
            elif allowed.read and user_id is None:
                user_id, defaults = bearer.user.id, MEMBER_DEFAULT_STATES  # an observer
            else:
                raise unauthorized()
            roster = await service.list_enrollments(
                session, course, EnrollmentFilter(types, states, user_id), defaults, asked
            )
        show_sis = bearer.user.is_admin
        body = [
            service.enrollment_json(row, person, course, show_sis=show_sis) for row, person in roster.rows
        ]
        return self._page(request, body, asked, roster.total)

    @staticmethod
    async def _is_staff(session: Any, course: Course, user_id: int) -> bool:
        """Whether the user teaches, assists or designs the course (Canvas's ``read_as_admin``)."""
        mine = await service.own_enrollments(session, course, user_id)
        return any(row.type in service.STAFF_TYPES for row in mine)

    async def create_enrollment(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """POST /api/v1/courses/:course_id/enrollments (account admins): Canvas's
        ``EnrollmentsApiController#create`` for built-in roles."""
        async with self.ctx.db.session(write=True) as session:
            course = await self._course(session, request)
            enrollment_type = _enrollment_type(params)
            if not bearer.user.is_admin:
                raise unauthorized()
            raw_user = params.get("enrollment[user_id]") or ""
            user_id = bearer.user.id if raw_user == "self" else users.parse_id(raw_user)
            person = await users.find_person(session, user_id)
            if person is None:
                raise not_found()
            state = params.get("enrollment[enrollment_state]") or None
            try:
                async with session.begin_nested():
                    row = await service.enroll(
                        session,
                        course,
                        person.user.id,
                        enrollment_type,
                        state or "invited",
                        keep_active=state is None,
                    )
            except EnrollRefused as exc:
                raise create_errors(str(exc)) from None
            body = service.enrollment_json(row, person, course, show_sis=True)
        return JSONResponse(body)


def _enrollment_type(params: Params) -> str:
    """The enrollment type asked for, or Canvas's 400 with every problem found, joined."""
    if not any(name.startswith("enrollment[") for name in params.names()):
        raise create_errors("No parameters given")
    errors: list[str] = []
    kind = params.get("enrollment[type]") or ""
    role = params.get("enrollment[role]")
    if params.get("enrollment[role_id]") is not None:
        errors.append("Invalid role")  # this server has no role ids: only built-in roles
    elif role is not None:
        if role not in service.ROLE_NAMES:
            errors.append("Invalid role")
        elif kind and kind != role:
            errors.append("The specified type must match the base type for the role")
        kind = kind or role
    else:
        kind = kind or "StudentEnrollment"
        if kind not in service.ROLE_NAMES:
            errors.append("Invalid type")
    if not params.get("enrollment[user_id]"):
        errors.append(
            "Can't create an enrollment without a user. Include enrollment[user_id] to create an enrollment"
        )
    if errors:
        raise create_errors(", ".join(errors))
    return kind
