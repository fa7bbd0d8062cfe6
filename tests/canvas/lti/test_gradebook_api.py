"""The gradebook through the Canvas REST API: canvasapi lists a course's assignments and
their submissions, with each permission held both ways (a teacher may, a student may not)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from canvasapi import Canvas
from canvasapi.course import Course as CanvasCourse
from canvasapi.exceptions import Unauthorized
from starlette.testclient import TestClient

from lmsauth.canvas.courses.gradebook import Assignment
from tests.canvas.lti.services_support import LtiWorld, Tool, classroom, items_path, lti_id, path_of, serve
from tests.canvas.support import issue_tokens
from tests.conftest import Key, Person
from tests.contract.conftest import conforms

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")
PASSWORD = "correct horse battery"
UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}


def graded(client: TestClient, world: LtiWorld) -> dict[str, int]:
    people = classroom(world)
    tool = Tool(client, world)
    quiz = path_of(tool.create(items_path(world), label="Quiz 1", scoreMaximum=10)["id"])
    tool.create(items_path(world), label="Draft", scoreMaximum=5)
    world.update(Assignment, 2, workflow_state="unpublished")
    assert (
        tool.score(quiz, lti_id(world, people["student"]), scoreGiven=7, scoreMaximum=10).status_code == 200
    )
    return people


def token(client: TestClient, world: LtiWorld, key: Key, login: str) -> str:
    browser = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    person = Person(world.users[login], login, PASSWORD, login)
    return str(issue_tokens(browser, key, person)["access_token"])


@pytest.fixture
def tokens(client, world, directory) -> dict[str, str]:
    graded(client, world)
    key = directory.key()
    return {
        role: token(client, world, key, f"{role}@example.edu")
        for role in ("teacher", "ta", "student", "student2", "observer", "elsewhere")
    }


def get(client: TestClient, url: str, bearer: str) -> Any:
    return client.get(url, headers={"Authorization": f"Bearer {bearer}"})


def test_canvasapi_reads_assignments_and_grades(client, settings, world, directory) -> None:
    people = graded(client, world)
    key = directory.key()
    with serve(settings) as base, httpx.Client(base_url=base, follow_redirects=False) as browser:
        teacher = issue_tokens(browser, key, Person(people["teacher"], "teacher@example.edu", PASSWORD, "T"))
        course = CanvasCourse(
            Canvas(base, teacher["access_token"])._Canvas__requester, {"id": world.courses["course"]}
        )
        assignments = list(course.get_assignments())
        assert [(a.name, a.points_possible, a.published) for a in assignments] == [
            ("Quiz 1", 10.0, True),
            ("Draft", 5.0, False),
        ]
        grades = {s.user_id: s.grade for s in assignments[0].get_submissions()}
        assert (grades[people["student"]], grades[people["student2"]]) == ("7", None)
    with serve(settings) as base, httpx.Client(base_url=base, follow_redirects=False) as browser:
        student = issue_tokens(browser, key, Person(people["student"], "student@example.edu", PASSWORD, "S"))
        mine = CanvasCourse(
            Canvas(base, student["access_token"])._Canvas__requester, {"id": world.courses["course"]}
        )
        visible = list(mine.get_assignments())
        assert [a.name for a in visible] == ["Quiz 1"]
        with pytest.raises(Unauthorized):
            list(visible[0].get_submissions())
        assert visible[0].get_submission("self").grade == "7"


def test_list_submissions_is_for_graders(client, world, tokens) -> None:
    url = f"/api/v1/courses/{world.courses['course']}/assignments/1/submissions"
    for role in ("teacher", "ta"):
        response = get(client, url, tokens[role])
        assert response.status_code == 200, role
        assert {s["user_id"]: s["grade"] for s in response.json()} == {
            world.users["student@example.edu"]: "7",
            world.users["student2@example.edu"]: None,
            world.users["teacher@example.edu"]: None,
        }
        conforms(response, "GET", "/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions")
    for role in ("student", "observer", "elsewhere"):
        refused = get(client, url, tokens[role])
        assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED), role
    conforms(refused, "GET", "/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions")


def test_one_submission_for_its_student_or_a_grader(client, world, tokens) -> None:
    base = f"/api/v1/courses/{world.courses['course']}/assignments/1/submissions"
    student = world.users["student@example.edu"]
    assert get(client, f"{base}/self", tokens["student"]).json()["grade"] == "7"
    assert get(client, f"{base}/{student}", tokens["student"]).json()["score"] == 7.0
    assert get(client, f"{base}/{student}", tokens["teacher"]).json()["grade"] == "7"
    mine = get(client, f"{base}/self", tokens["student2"])
    assert (mine.json()["grade"], mine.json()["workflow_state"]) == (None, "unsubmitted")
    conforms(mine, "GET", "/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions/{user_id}")
    other = get(client, f"{base}/{student}", tokens["student2"])
    assert (other.status_code, other.json()) == (401, UNAUTHORIZED)
    assert get(client, f"{base}/{student}", tokens["observer"]).status_code == 401
    assert get(client, f"{base}/999", tokens["teacher"]).status_code == 404


def test_assignments_by_role(client, world, tokens) -> None:
    url = f"/api/v1/courses/{world.courses['course']}/assignments"
    assert [a["name"] for a in get(client, url, tokens["teacher"]).json()] == ["Quiz 1", "Draft"]
    listed = get(client, url, tokens["student"])
    assert [a["name"] for a in listed.json()] == ["Quiz 1"]
    conforms(listed, "GET", "/api/v1/courses/{course_id}/assignments")
    refused = get(client, url, tokens["elsewhere"])
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    # An unpublished assignment does not exist for a student.
    draft = get(client, f"{url}/2/submissions/self", tokens["student"])
    assert draft.status_code == 404
    missing = get(client, "/api/v1/courses/999/assignments", tokens["teacher"])
    assert missing.status_code == 404
    conforms(missing, "GET", "/api/v1/courses/{course_id}/assignments")
