"""The course pages (``canvas.courses.pages``): a person's course list and course page, the
admin console's courses; each permission both ways, every form with the session's
authenticity token, a refused form changing nothing."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.canvas.courses.conftest import Caller, enroll, make_course, rows
from tests.canvas.support import sign_in
from tests.conftest import Directory

TOKEN = re.compile(r'name="authenticity_token" value="([^"]+)"')


def form_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    match = TOKEN.search(page.text)
    assert match is not None, page.text
    return match.group(1)


def test_anonymous_people_go_to_log_in(client: TestClient, course: int) -> None:
    for path in ("/courses", f"/courses/{course}", "/accounts/self/courses"):
        response = client.get(path)
        assert (response.status_code, response.headers["location"]) == (302, "/login/canvas"), path
    for path in (f"/courses/{course}/enroll_users", "/accounts/self/courses"):
        assert client.post(path, data={}).status_code == 302


def test_a_student_sees_their_courses_and_a_course_page_but_not_the_console(
    client: TestClient, directory: Directory, student: Caller, outsider: Caller, course: int
) -> None:
    hidden = make_course(directory, "Secret Seminar")
    sign_in(client, student.person)
    mine = client.get("/courses")
    assert mine.status_code == 200
    assert 'aria-current="page">Courses</a>' in mine.text
    assert f'<a href="/courses/{course}">Biology 101</a>' in mine.text
    assert "Secret Seminar" not in mine.text
    page = client.get(f"/courses/{course}")
    assert page.status_code == 200
    assert "<h1>Biology 101</h1>" in page.text
    assert "Teacher, Terry" in page.text and "Student, Sam" in page.text  # the roster
    assert "Enroll a person" not in page.text
    assert "BIO-101" not in page.text  # the SIS id is for admins
    refused = client.get(f"/courses/{hidden}")
    assert refused.status_code == 401
    assert "You are not authorized to perform that action." in refused.text
    assert client.get("/courses/424242").status_code == 404
    assert client.get("/accounts/self/courses").status_code == 401
    token = form_token(client, "/courses")
    before = rows(directory)
    posted = client.post(
        f"/courses/{course}/enroll_users",
        data={"authenticity_token": token, "login": "outsider@example.edu", "role": "teacher"},
    )
    assert posted.status_code == 401
    created = client.post("/accounts/self/courses", data={"authenticity_token": token, "course[name]": "X"})
    assert created.status_code == 401
    assert rows(directory) == before


def test_an_observer_sees_only_themself_on_the_course_page(
    client: TestClient, directory: Directory, course: int
) -> None:
    parent = directory.user(login="parent@example.edu", name="Pat Parent")
    enroll(directory, course, parent, "ObserverEnrollment")
    sign_in(client, parent)
    page = client.get(f"/courses/{course}")
    assert page.status_code == 200
    assert "Parent, Pat" in page.text
    assert "Student, Sam" not in page.text


def test_an_admin_creates_a_course_and_enrolls_people(
    client: TestClient, directory: Directory, admin: Caller, teacher: Caller, student: Caller
) -> None:
    sign_in(client, admin.person)
    token = form_token(client, "/accounts/self/courses")
    made = client.post(
        "/accounts/self/courses",
        data={
            "authenticity_token": token,
            "course[name]": "Chemistry 202 Spring",
            "course[sis_course_id]": "CHEM-202",
            "publish": "1",
        },
    )
    assert made.status_code == 303
    location = made.headers["location"]
    assert re.fullmatch(r"/courses/\d+\?notice=.+", location), location
    course_path = location.split("?")[0]
    page = client.get(location)
    assert "Created Chemistry 202 Spring." in page.text
    assert '<dd id="course-code">Chemistry 202</dd>' in page.text
    assert '<dd id="course-state">available</dd>' in page.text
    assert "Nobody is enrolled." in page.text

    for login, role in (("TEACHER@example.edu", "teacher"), ("student@example.edu", "student")):
        enrolled = client.post(
            course_path + "/enroll_users",
            data={"authenticity_token": token, "login": login, "role": role, "state": "active"},
        )
        assert enrolled.status_code == 303, enrolled.text
    page = client.get(course_path)
    assert "Teacher, Terry" in page.text and "Student, Sam" in page.text
    console = client.get("/accounts/self/courses")
    assert "1 course" in console.text and "CHEM-202" in console.text


def test_admin_forms_refuse_bad_input_and_a_missing_token_changing_nothing(
    client: TestClient, directory: Directory, admin: Caller, course: int
) -> None:
    sign_in(client, admin.person)
    token = form_token(client, "/accounts/self/courses")
    before = rows(directory)
    no_token = client.post("/accounts/self/courses", data={"course[name]": "Forged"})
    assert no_token.status_code == 422
    forged = client.post(
        f"/courses/{course}/enroll_users",
        data={"authenticity_token": "forged", "login": "admin@example.edu", "role": "teacher"},
    )
    assert forged.status_code == 422
    taken = client.post(
        "/accounts/self/courses",
        data={"authenticity_token": token, "course[name]": "Again", "course[sis_course_id]": "BIO-101"},
    )
    assert taken.status_code == 400
    assert "sis_source_id: SIS ID &#34;BIO-101&#34; is already in use" in taken.text
    for login, role, message in (
        ("nobody@example.edu", "student", "no user with login nobody@example.edu"),
        ("admin@example.edu", "dean", "the role must be one of"),
        ("", "student", "give the login of the person to enroll"),
    ):
        refused = client.post(
            f"/courses/{course}/enroll_users",
            data={"authenticity_token": token, "login": login, "role": role},
        )
        assert refused.status_code == 400, login
        assert message in refused.text
    assert rows(directory) == before
