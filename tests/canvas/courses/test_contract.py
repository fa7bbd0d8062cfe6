"""Real answers of the Courses and Enrollments APIs and of the course pages validate against
openapi.yaml, the errors among them."""

from __future__ import annotations

from typing import Any

from tests.canvas.courses.conftest import Caller, enroll, make_course
from tests.canvas.support import sign_in
from tests.conftest import Directory
from tests.contract.conftest import conforms
from tests.flows import form_token

ONE = "/api/v1/courses/{course_id}"
ROSTER = "/api/v1/courses/{course_id}/enrollments"
CREATE = "/api/v1/accounts/{account_id}/courses"


def test_api_answers_conform(
    client: Any, directory: Directory, admin: Caller, student: Caller, outsider: Caller, course: int
) -> None:
    draft = make_course(directory, "Draft", publish=False)
    enroll(directory, draft, admin.person, "TeacherEnrollment")
    for who in (admin, student, outsider):
        conforms(client.get("/api/v1/courses", headers=who.headers), "GET", "/api/v1/courses")
        conforms(client.get(f"/api/v1/courses/{course}", headers=who.headers), "GET", ONE)
        conforms(client.get(f"/api/v1/courses/{course}/enrollments", headers=who.headers), "GET", ROSTER)
    conforms(client.get("/api/v1/courses?page=x", headers=admin.headers), "GET", "/api/v1/courses")
    conforms(client.get("/api/v1/courses"), "GET", "/api/v1/courses")
    conforms(client.get("/api/v1/courses/424242", headers=admin.headers), "GET", ONE)
    conforms(
        client.get(f"/api/v1/courses/{course}/enrollments?user_id=9", headers=admin.headers), "GET", ROSTER
    )
    for who, data in (
        (admin, {"course[name]": "New", "offer": "1", "enroll_me": "true"}),
        (admin, {"course[sis_course_id]": "BIO-101"}),
        (admin, {"course[name]": "x" * 300}),
        (student, {"course[name]": "Mine"}),
    ):
        conforms(client.post("/api/v1/accounts/self/courses", data=data, headers=who.headers), "POST", CREATE)
    conforms(client.post("/api/v1/accounts/9/courses", data={}, headers=admin.headers), "POST", CREATE)
    user = str(outsider.person.id)
    for who, data in (
        (admin, {"enrollment[user_id]": user, "enrollment[type]": "TaEnrollment"}),
        (admin, {"enrollment[user_id]": user, "enrollment[type]": "Bogus"}),
        (admin, {}),
        (admin, {"enrollment[user_id]": "424242"}),
        (student, {"enrollment[user_id]": user}),
    ):
        answer = client.post(f"/api/v1/courses/{course}/enrollments", data=data, headers=who.headers)
        conforms(answer, "POST", ROSTER)


def test_pages_conform(
    client: Any, directory: Directory, admin: Caller, student: Caller, course: int
) -> None:
    conforms(client.get("/courses"), "GET", "/courses")
    conforms(client.get(f"/courses/{course}"), "GET", "/courses/{course_id}")
    sign_in(client, student.person)
    conforms(client.get("/courses"), "GET", "/courses")
    conforms(client.get(f"/courses/{course}"), "GET", "/courses/{course_id}")
    conforms(client.get("/courses/424242"), "GET", "/courses/{course_id}")
    conforms(client.get("/accounts/self/courses"), "GET", "/accounts/self/courses")
    client.cookies.clear()
    sign_in(client, admin.person)
    token = form_token(client.get("/accounts/self/courses").text)
    conforms(client.get("/accounts/self/courses"), "GET", "/accounts/self/courses")
    for data in (
        {"authenticity_token": token, "course[name]": "Made"},
        {"authenticity_token": token, "course[sis_course_id]": "BIO-101"},
        {"course[name]": "Forged"},
    ):
        conforms(client.post("/accounts/self/courses", data=data), "POST", "/accounts/self/courses")
    path = f"/courses/{course}/enroll_users"
    for data in (
        {"authenticity_token": token, "login": "admin@example.edu", "role": "ta"},
        {"authenticity_token": token, "login": "nobody@example.edu", "role": "ta"},
        {"login": "admin@example.edu", "role": "ta"},
    ):
        conforms(client.post(path, data=data), "POST", "/courses/{course_id}/enroll_users")
