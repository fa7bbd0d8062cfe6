"""The course gradebook page, ``/courses/:course_id/gradebook``: what the Assignment and Grade
Services wrote, in the signed-in layout.

Teachers and TAs of the course (an active enrollment) and account admins see every active
student's grade on every assignment that is not deleted; a student sees their own grades on
the published assignments. Anyone else gets the "Unauthorized" page (401), an anonymous
visitor the login page, and a course that does not exist the 404 page. Read-only: no forms.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lmsauth.canvas import signed_in
from lmsauth.canvas.api import CanvasApi
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.courses import SECTION
from lmsauth.canvas.courses.gradebook import Assignment, Submission
from lmsauth.canvas.courses.gradebook_access import access, find_course, students
from lmsauth.canvas.courses.gradebook_api import GradebookApi


def gradebook_path(course_id: int) -> str:
    """Where the course page links to."""
    return f"/courses/{course_id}/gradebook"


class GradebookPage:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def show(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            course = await find_course(session, request.path_params["course_id"])
            if course is None:
                return signed_in.page(
                    self.ctx, request, who, "message.html", 404, title="Page not found",
                    message="There is no such course.", section=SECTION,
                )  # fmt: skip
            allowed = await access(session, course, who.user.id, who.is_admin)
            if not allowed.any:
                return signed_in.not_authorized_page(self.ctx, request, who)
            grader = allowed.grader
            assignments = list(
                await session.scalars(
                    select(Assignment)
                    .where(
                        Assignment.course_id == course.id,
                        Assignment.workflow_state.in_(
                            ("published", "unpublished") if grader else ("published",)
                        ),
                    )
                    .order_by(Assignment.id)
                )
            )
            people = await students(session, course) if grader else [who.user]
            grades = await self._grades(session, [a.id for a in assignments], [p.id for p in people])
            rows: list[dict[str, Any]] = [
                {"student": student, "grades": [grades.get((a.id, student.id)) for a in assignments]}
                for student in people
            ]
            return signed_in.page(
                self.ctx,
                request,
                who,
                "gradebook.html",
                section=SECTION,
                course=course,
                assignments=assignments,
                rows=rows,
                grader=grader,
            )

    @staticmethod
    async def _grades(
        session: Any, assignment_ids: list[int], user_ids: list[int]
    ) -> dict[tuple[int, int], str]:
        if not assignment_ids or not user_ids:
            return {}
        found = await session.scalars(
            select(Submission).where(
                Submission.assignment_id.in_(assignment_ids), Submission.user_id.in_(user_ids)
            )
        )
        return {(s.assignment_id, s.user_id): s.grade for s in found if s.grade is not None}


def gradebook_routes(api: CanvasApi) -> list[BaseRoute]:
    """The page, and the gradebook's REST API (``gradebook_api``)."""
    page = GradebookPage(api.ctx)
    rest = GradebookApi(api.ctx)
    assignment = "/api/v1/courses/{course_id}/assignments/{assignment_id}"
    return [
        Route("/courses/{course_id}/gradebook", page.show, methods=["GET"]),
        Route(
            "/api/v1/courses/{course_id}/assignments", api.protected(rest.list_assignments), methods=["GET"]
        ),
        Route(assignment + "/submissions", api.protected(rest.list_submissions), methods=["GET"]),
        Route(assignment + "/submissions/{user_id}", api.protected(rest.show_submission), methods=["GET"]),
    ]
