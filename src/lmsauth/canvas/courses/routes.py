"""The course routes that ``canvas.routes`` mounts: the Courses and Enrollments APIs (behind
Bearer tokens) and the pages (people's course list and course page, the admin console's)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from lmsauth.canvas.api import CanvasApi
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.courses.api import CoursesApi
from lmsauth.canvas.courses.pages import CoursePages

_COURSE = "/api/v1/courses/{course_id}"


def course_routes(ctx: CanvasContext, api: CanvasApi) -> list[BaseRoute]:
    courses = CoursesApi(ctx)
    pages = CoursePages(ctx)
    return [
        Route("/api/v1/courses", api.protected(courses.list_courses), methods=["GET"]),
        Route(_COURSE, api.protected(courses.show_course), methods=["GET"]),
        Route(
            "/api/v1/accounts/{account_id}/courses", api.protected(courses.create_course), methods=["POST"]
        ),
        Route(_COURSE + "/enrollments", api.protected(courses.list_enrollments), methods=["GET"]),
        Route(_COURSE + "/enrollments", api.protected(courses.create_enrollment), methods=["POST"]),
        Route("/courses", pages.my_courses, methods=["GET"]),
        Route("/courses/{course_id}", pages.course, methods=["GET"]),
        Route("/courses/{course_id}/enroll_users", pages.enroll, methods=["POST"]),
        Route("/accounts/self/courses", pages.account_courses, methods=["GET"]),
        Route("/accounts/self/courses", pages.create, methods=["POST"]),
    ]
