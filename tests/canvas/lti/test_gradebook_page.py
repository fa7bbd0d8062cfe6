"""The course gradebook page (``/courses/:id/gradebook``): what a tool's scores made of the
grades, for teachers, TAs and admins in full, for a student their own, for nobody else."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from lmsauth.canvas.courses.gradebook import Assignment
from tests.canvas.lti.services_support import LtiWorld, Tool, classroom, items_path, lti_id, path_of
from tests.contract.conftest import conforms
from tests.flows import log_in

PASSWORD = "correct horse battery"
PATH = "/courses/{course_id}/gradebook"
NONE = "\u2013"  # an en dash: no grade


def squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", html)


def graded_course(client: TestClient, world: LtiWorld) -> dict[str, int]:
    people = classroom(world)
    tool = Tool(client, world)
    quiz = path_of(tool.create(items_path(world), label="Quiz 1", scoreMaximum=10)["id"])
    essay = path_of(tool.create(items_path(world), label="Essay", scoreMaximum=20)["id"])
    assert (
        tool.score(quiz, lti_id(world, people["student"]), scoreGiven=7, scoreMaximum=10).status_code == 200
    )
    assert (
        tool.score(essay, lti_id(world, people["student2"]), scoreGiven=3, scoreMaximum=4).status_code == 200
    )
    return people


def browse(client: TestClient, login: str | None, url: str) -> Any:
    browser = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    if login is not None:
        assert log_in(browser, login, PASSWORD).status_code == 302
    return browser.get(url)


def test_teachers_tas_and_admins_see_every_grade(client, world) -> None:
    graded_course(client, world)
    world.person("admin@example.edu", "Ada Admin", admin=True)
    url = f"/courses/{world.courses['course']}/gradebook"
    for login in ("teacher@example.edu", "ta@example.edu", "admin@example.edu"):
        page = browse(client, login, url)
        assert page.status_code == 200, login
        html = squeezed(page.text)
        assert "Quiz 1 (out of 10)" in html and "Essay (out of 20)" in html
        assert f'<th scope="row">Student, Sam</th><td>7</td><td>{NONE}</td>' in html
        assert f'<th scope="row">Second, Sue</th><td>{NONE}</td><td>15</td>' in html
        assert "Teacher, Tess" in html  # enrolled as a student too
        assert "Dropped" not in html and "Elsewhere" not in html
        # One layout: the navigation marks Courses, and the page leads back to its course.
        assert '<a href="/courses" aria-current="page">Courses</a>' in html
        assert f'<a href="/courses/{world.courses["course"]}" id="course-link">' in html
        conforms(page, "GET", PATH)


def test_a_student_sees_only_their_own_published_grades(client, world) -> None:
    graded_course(client, world)
    world.update(Assignment, 2, workflow_state="unpublished")
    page = browse(client, "student@example.edu", f"/courses/{world.courses['course']}/gradebook")
    assert page.status_code == 200
    assert "Your grades" in page.text
    assert '<th scope="row">Student, Sam</th><td>7</td></tr>' in squeezed(page.text)
    assert "Second, Sue" not in page.text and "Essay" not in page.text


def test_others_are_refused(client, world) -> None:
    graded_course(client, world)
    url = f"/courses/{world.courses['course']}/gradebook"
    for login in (
        "observer@example.edu",
        "designer@example.edu",
        "elsewhere@example.edu",
        "dropped@example.edu",
    ):
        page = browse(client, login, url)
        assert page.status_code == 401, login
        assert "Unauthorized" in page.text
        assert "Quiz 1" not in page.text
    anonymous = browse(client, None, url)
    assert (anonymous.status_code, anonymous.headers["location"]) == (302, "/login/canvas")
    conforms(anonymous, "GET", PATH)


def test_a_course_that_does_not_exist(client, world) -> None:
    graded_course(client, world)
    for course in ("999", "abc"):
        page = browse(client, "teacher@example.edu", f"/courses/{course}/gradebook")
        assert page.status_code == 404
        conforms(page, "GET", PATH)
