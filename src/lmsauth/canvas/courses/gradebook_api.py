"""The gradebook through the Canvas REST API (Canvas's ``AssignmentsApiController`` and
``SubmissionsApiController``, the part a client reads grades with), behind
``CanvasApi.protected``:

- ``GET /api/v1/courses/:course_id/assignments``: the course's assignments; a student sees the
  published ones, a grader (teacher, TA, account admin) every one not deleted;
- ``GET /api/v1/courses/:course_id/assignments/:assignment_id/submissions``: every active
  student's submission, for graders only;
- ``GET .../submissions/:user_id`` (``self`` too): one student's, for that student or a grader.

Order of checks, as Canvas's: the course and assignment (404), then the caller's right (401
``unauthorized``: a student asking for everyone's grades, or someone outside the course).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.bearer import Bearer
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.courses.gradebook import Assignment, Submission
from lmsauth.canvas.courses.gradebook_access import Access, access, find_course, parse_id, students
from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.errors import not_found, unauthorized
from lmsauth.canvas.lti.line_items import iso
from lmsauth.canvas.pagination import page_request, paginate
from lmsauth.core.web import ORJSONResponse, Params


def assignment_json(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "course_id": assignment.course_id,
        "name": assignment.name,
        "points_possible": assignment.points_possible,
        "grading_type": assignment.grading_type,
        "submission_types": assignment.submission_types.split(","),
        "published": assignment.workflow_state == "published",
        "workflow_state": assignment.workflow_state,
        "unlock_at": iso(assignment.unlock_at),
        "due_at": iso(assignment.due_at),
        "created_at": iso(assignment.created_at),
        "updated_at": iso(assignment.updated_at),
    }


def submission_json(assignment: Assignment, user_id: int, found: Submission | None) -> dict[str, Any]:
    """Canvas answers for every student, with an ``unsubmitted`` row where nothing was handed in."""
    return {
        "id": found.id if found is not None else None,
        "assignment_id": assignment.id,
        "user_id": user_id,
        "score": found.score if found is not None else None,
        "grade": found.grade if found is not None else None,
        "submission_type": found.submission_type if found is not None else None,
        "workflow_state": found.workflow_state if found is not None else "unsubmitted",
        "submitted_at": iso(found.submitted_at) if found is not None else None,
        "graded_at": iso(found.graded_at) if found is not None else None,
    }


class GradebookApi:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def _course(self, session: AsyncSession, request: Request, bearer: Bearer) -> tuple[Course, Access]:
        course = await find_course(session, request.path_params["course_id"])
        if course is None:
            raise not_found()
        allowed = await access(session, course, bearer.user.id, bearer.user.is_admin)
        return course, allowed

    async def _assignment(
        self, session: AsyncSession, request: Request, course: Course, allowed: Access
    ) -> Assignment:
        assignment_id = parse_id(request.path_params["assignment_id"])
        assignment = await session.get(Assignment, assignment_id) if assignment_id is not None else None
        visible = ("published", "unpublished") if allowed.grader else ("published",)
        if (
            assignment is None
            or assignment.course_id != course.id
            or assignment.workflow_state not in visible
        ):
            raise not_found()
        return assignment

    async def list_assignments(self, request: Request, bearer: Bearer, params: Params) -> Response:
        async with self.ctx.db.session() as session:
            course, allowed = await self._course(session, request, bearer)
            if not allowed.any:
                raise unauthorized()
            visible = ("published", "unpublished") if allowed.grader else ("published",)
            query = select(Assignment).where(
                Assignment.course_id == course.id, Assignment.workflow_state.in_(visible)
            )
            asked = page_request(params)
            total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
            found = await session.scalars(
                query.order_by(Assignment.id).offset(asked.offset).limit(asked.per_page)
            )
            body = [assignment_json(assignment) for assignment in found]
        return paginate(ORJSONResponse(body), request, self.ctx.settings.public_url, asked, total)

    async def list_submissions(self, request: Request, bearer: Bearer, params: Params) -> Response:
        async with self.ctx.db.session() as session:
            course, allowed = await self._course(session, request, bearer)
            assignment = await self._assignment(session, request, course, allowed)
            if not allowed.grader:
                raise unauthorized()
            people = await students(session, course)
            asked = page_request(params)
            page = people[asked.offset : asked.offset + asked.per_page]
            found = {
                submission.user_id: submission
                for submission in await session.scalars(
                    select(Submission).where(
                        Submission.assignment_id == assignment.id,
                        Submission.user_id.in_([user.id for user in page]),
                    )
                )
            }
            body = [submission_json(assignment, user.id, found.get(user.id)) for user in page]
        return paginate(ORJSONResponse(body), request, self.ctx.settings.public_url, asked, len(people))

    async def show_submission(self, request: Request, bearer: Bearer, params: Params) -> Response:
        async with self.ctx.db.session() as session:
            course, allowed = await self._course(session, request, bearer)
            assignment = await self._assignment(session, request, course, allowed)
            raw = request.path_params["user_id"]
            user_id = bearer.user.id if raw == "self" else parse_id(raw)
            if user_id is None:
                raise not_found()
            if not (allowed.grader or (allowed.student and user_id == bearer.user.id)):
                raise unauthorized()
            if user_id not in {user.id for user in await students(session, course)}:
                raise not_found()
            found = await session.scalar(
                select(Submission).where(
                    Submission.assignment_id == assignment.id, Submission.user_id == user_id
                )
            )
            return ORJSONResponse(submission_json(assignment, user_id, found))
