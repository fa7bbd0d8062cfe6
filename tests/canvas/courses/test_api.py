"""The Courses and Enrollments APIs (``canvas.courses.api``): canvasapi drives them against a
live server; the in-process client checks each permission both ways, Canvas's error shapes, and
that refused input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from canvasapi import Canvas
from canvasapi.account import Account
from canvasapi.exceptions import BadRequest, ResourceDoesNotExist, Unauthorized
from sqlalchemy import update

from lmsauth.canvas.courses.models import Course
from tests.canvas.courses.conftest import (
    NOT_FOUND,
    UNAUTHORIZED,
    Caller,
    caller,
    enroll,
    in_session,
    make_course,
    rows,
)
from tests.conftest import Directory, LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")

COURSES = "/api/v1/courses"
CREATE = "/api/v1/accounts/self/courses"


def root_account(canvas: Canvas) -> Account:
    """``self``: this server serves no ``GET /accounts/:id``."""
    return Account(canvas._Canvas__requester, {"id": "self"})  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- canvasapi


def test_canvasapi_creates_a_course_enrolls_and_lists_across_pages(
    live_server: LiveServer, directory: Directory, admin: Caller, teacher: Caller, student: Caller
) -> None:
    canvas = Canvas(live_server.url, admin.token)
    created = root_account(canvas).create_course(
        course={"name": "Biology 101 Fall", "sis_course_id": "BIO-101-F"}, offer=True
    )
    assert (created.name, created.course_code, created.workflow_state) == (
        "Biology 101 Fall",
        "Biology 101",
        "available",
    )
    assert created.sis_course_id == "BIO-101-F"
    course = canvas.get_course(created.id)
    assert course.uuid == created.uuid
    with pytest.warns(DeprecationWarning):  # canvasapi's own warning for the positional type
        made = course.enroll_user(
            teacher.person.id, "TeacherEnrollment", enrollment={"enrollment_state": "active"}
        )
    assert (made.type, made.enrollment_state, made.user["login_id"]) == (
        "TeacherEnrollment",
        "active",
        "teacher@example.edu",
    )
    course.enroll_user(
        student.person.id, enrollment={"type": "StudentEnrollment", "enrollment_state": "active"}
    )
    for number in range(3):
        extra = directory.user(login=f"s{number}@example.edu", name=f"Student {number}")
        course.enroll_user(extra.id, enrollment={"type": "StudentEnrollment"})  # invited, Canvas's default

    listed = list(course.get_enrollments(per_page=2))  # PaginatedList follows the Link header
    assert [(row.type, row.user["name"]) for row in listed] == [
        ("StudentEnrollment", "Student 0"),  # by sortable name: "0, Student" first
        ("StudentEnrollment", "Student 1"),
        ("StudentEnrollment", "Student 2"),
        ("StudentEnrollment", "Sam Student"),
        ("TeacherEnrollment", "Terry Teacher"),
    ]
    assert [row.enrollment_state for row in listed] == ["invited", "invited", "invited", "active", "active"]
    teachers = list(course.get_enrollments(type=["TeacherEnrollment"]))
    assert [row.user_id for row in teachers] == [teacher.person.id]

    # The teacher's and the student's own clients see the course, with their own enrollment.
    for who, role in ((teacher, "teacher"), (student, "student")):
        mine = list(Canvas(live_server.url, who.token).get_courses())
        assert [(found.id, found.enrollments[0]["type"]) for found in mine] == [(created.id, role)]
        assert not hasattr(mine[0], "sis_course_id")  # SIS ids are for admins
        assert Canvas(live_server.url, who.token).get_course(created.id).name == "Biology 101 Fall"
    # The admin is not enrolled: no course of theirs, though they may read it.
    assert list(canvas.get_courses()) == []


def test_canvasapi_errors(live_server: LiveServer, admin: Caller, student: Caller, course: int) -> None:
    as_student = Canvas(live_server.url, student.token)
    with pytest.raises(Unauthorized):
        root_account(as_student).create_course(course={"name": "Mine"})
    with pytest.raises(Unauthorized):
        as_student.get_course(course).enroll_user(student.person.id, enrollment={"type": "TeacherEnrollment"})
    with pytest.raises(ResourceDoesNotExist):
        as_student.get_course(424242)
    with pytest.raises(BadRequest) as refused:
        Canvas(live_server.url, admin.token).get_course(course).enroll_user(
            student.person.id, enrollment={"type": "WizardEnrollment"}
        )
    assert "Invalid type" in str(refused.value)


# ---------------------------------------------------------------------------- reading courses


def test_who_may_read_a_course(
    client: Any,
    directory: Directory,
    admin: Caller,
    teacher: Caller,
    student: Caller,
    outsider: Caller,
    course: int,
) -> None:
    for who in (admin, teacher, student):
        shown = client.get(f"{COURSES}/{course}", headers=who.headers)
        assert shown.status_code == 200, shown.text
        assert shown.json()["id"] == course
    assert client.get(f"{COURSES}/{course}", headers=admin.headers).json()["enrollments"] == []
    assert client.get(f"{COURSES}/{course}", headers=admin.headers).json()["sis_course_id"] == "BIO-101"
    refused = client.get(f"{COURSES}/{course}", headers=outsider.headers)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    for raw in ("424242", "abc", "sis_course_id:NOPE", str(10**25)):
        missing = client.get(f"{COURSES}/{raw}", headers=admin.headers)
        assert (missing.status_code, missing.json()) == (404, NOT_FOUND), raw
    by_sis = client.get(f"{COURSES}/sis_course_id:BIO-101", headers=student.headers)
    assert by_sis.json()["id"] == course


def test_students_do_not_see_unpublished_courses_but_teachers_do(
    client: Any, directory: Directory, teacher: Caller, student: Caller
) -> None:
    draft = make_course(directory, "Draft Course", publish=False)
    enroll(directory, draft, teacher.person, "TeacherEnrollment")
    enroll(directory, draft, student.person, "StudentEnrollment")
    shown = client.get(f"{COURSES}/{draft}", headers=teacher.headers)
    assert shown.json()["workflow_state"] == "unpublished"
    assert [c["id"] for c in client.get(COURSES, headers=teacher.headers).json()] == [draft]
    assert client.get(COURSES, headers=student.headers).json() == []
    refused = client.get(f"{COURSES}/{draft}", headers=student.headers)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)


def test_course_list_filters_and_leaves_out_deleted_and_inactive(
    client: Any, directory: Directory, student: Caller, course: int
) -> None:
    other = make_course(directory, "Art 100")
    enroll(directory, other, student.person, "StudentEnrollment", "invited")
    gone = make_course(directory, "Zoology 9")
    enroll(directory, gone, student.person, "StudentEnrollment", "inactive")
    listed = client.get(COURSES, headers=student.headers)
    assert [c["name"] for c in listed.json()] == ["Art 100", "Biology 101"]
    assert 'rel="last"' in listed.headers["link"]
    active = client.get(COURSES, params={"enrollment_state": "active"}, headers=student.headers)
    assert [c["name"] for c in active.json()] == ["Biology 101"]
    teaching = client.get(COURSES, params={"enrollment_type": "teacher"}, headers=student.headers)
    assert teaching.json() == []
    paged = client.get(COURSES, params={"per_page": "1", "page": "2"}, headers=student.headers)
    assert [c["name"] for c in paged.json()] == ["Biology 101"]
    assert 'rel="prev"' in paged.headers["link"]


# ---------------------------------------------------------------------------- creating courses


def test_create_course_defaults_and_is_for_admins_only(
    client: Any, directory: Directory, admin: Caller, teacher: Caller
) -> None:
    before = rows(directory)
    refused = client.post(CREATE, headers=teacher.headers, data={"course[name]": "Mine"})
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    assert rows(directory) == before

    unnamed = client.post(CREATE, headers=admin.headers, data={"enroll_me": "true"})
    assert unnamed.status_code == 200, unnamed.text
    body = unnamed.json()
    assert (body["name"], body["course_code"], body["workflow_state"]) == (
        "Unnamed Course",
        "Unnamed",
        "unpublished",
    )
    mine = client.get(COURSES, headers=admin.headers).json()
    assert [(c["id"], c["enrollments"][0]["type"]) for c in mine] == [(body["id"], "teacher")]
    missing_account = client.post("/api/v1/accounts/999/courses", headers=admin.headers, data={})
    assert (missing_account.status_code, missing_account.json()) == (404, NOT_FOUND)


def test_create_course_refuses_a_taken_sis_id_and_long_fields(
    client: Any, directory: Directory, admin: Caller
) -> None:
    make_course(directory, sis_course_id="BIO-101")
    before = rows(directory)
    taken = client.post(
        CREATE, headers=admin.headers, data={"course[name]": "B", "course[sis_course_id]": "BIO-101"}
    )
    message = 'SIS ID "BIO-101" is already in use'
    assert taken.status_code == 400
    assert taken.json() == {
        "errors": {"sis_source_id": [{"attribute": "sis_source_id", "type": message, "message": message}]}
    }
    long = client.post(
        CREATE, headers=admin.headers, data={"course[name]": "x" * 256, "course[course_code]": "y" * 256}
    )
    assert long.status_code == 400
    assert set(long.json()["errors"]) == {"name", "course_code"}
    assert long.json()["errors"]["name"][0]["type"] == "too_long"
    assert rows(directory) == before


# ---------------------------------------------------------------------------- enrollments


def test_who_may_list_enrollments(
    client: Any,
    directory: Directory,
    admin: Caller,
    teacher: Caller,
    student: Caller,
    outsider: Caller,
    course: int,
) -> None:
    path = f"{COURSES}/{course}/enrollments"
    inactive = caller(directory, "gone@example.edu", "Gina Gone")
    enroll(directory, course, inactive.person, "StudentEnrollment", "inactive")
    # Admins and teachers see inactive enrollments too; students the active and invited ones.
    for who, count in ((admin, 3), (teacher, 3), (student, 2)):
        listed = client.get(path, headers=who.headers)
        assert listed.status_code == 200, listed.text
        assert len(listed.json()) == count, who.person.login
    assert "sis_user_id" in client.get(path, headers=admin.headers).json()[0]
    assert "sis_user_id" not in client.get(path, headers=student.headers).json()[0]
    refused = client.get(path, headers=outsider.headers)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    # Anyone may ask for their own enrollments (none, for an outsider); not for someone else's.
    own = client.get(path, params={"user_id": "self"}, headers=outsider.headers)
    assert (own.status_code, own.json()) == (200, [])
    other = client.get(path, params={"user_id": str(student.person.id)}, headers=outsider.headers)
    assert (other.status_code, other.json()) == (401, UNAUTHORIZED)
    unknown = client.get(path, params={"user_id": "424242"}, headers=admin.headers)
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)
    # An observer reads the course but lists only their own enrollments.
    observer = caller(directory, "parent@example.edu", "Pat Parent")
    enroll(directory, course, observer.person, "ObserverEnrollment")
    seen = client.get(path, headers=observer.headers).json()
    assert [row["user_id"] for row in seen] == [observer.person.id]
    states = client.get(path, params={"state[]": "inactive"}, headers=teacher.headers).json()
    assert [row["user"]["login_id"] for row in states] == ["gone@example.edu"]
    missing = client.get(f"{COURSES}/424242/enrollments", headers=admin.headers)
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)


def test_enroll_is_for_admins_and_reenrolling_changes_the_state(
    client: Any, directory: Directory, admin: Caller, teacher: Caller, outsider: Caller, course: int
) -> None:
    path = f"{COURSES}/{course}/enrollments"
    data = {"enrollment[user_id]": str(outsider.person.id), "enrollment[type]": "TaEnrollment"}
    before = rows(directory)
    refused = client.post(path, headers=teacher.headers, data=data)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    assert rows(directory) == before

    invited = client.post(path, headers=admin.headers, data=data)
    assert invited.status_code == 200, invited.text
    assert (invited.json()["role"], invited.json()["enrollment_state"]) == ("TaEnrollment", "invited")
    again = client.post(path, headers=admin.headers, data={**data, "enrollment[enrollment_state]": "active"})
    assert again.json()["id"] == invited.json()["id"]
    assert again.json()["enrollment_state"] == "active"
    # Enrolling them again without a state leaves the active enrollment active.
    kept = client.post(path, headers=admin.headers, data=data)
    assert (kept.json()["id"], kept.json()["enrollment_state"]) == (invited.json()["id"], "active")
    by_role = client.post(
        path,
        headers=admin.headers,
        data={"enrollment[user_id]": str(outsider.person.id), "enrollment[role]": "DesignerEnrollment"},
    )
    assert by_role.json()["type"] == "DesignerEnrollment"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "No parameters given"),
        ({"enrollment[user_id]": "{user}", "enrollment[type]": "Bogus"}, "Invalid type"),
        ({"enrollment[user_id]": "{user}", "enrollment[role]": "Bogus"}, "Invalid role"),
        ({"enrollment[user_id]": "{user}", "enrollment[role_id]": "7"}, "Invalid role"),
        (
            {
                "enrollment[user_id]": "{user}",
                "enrollment[role]": "TaEnrollment",
                "enrollment[type]": "StudentEnrollment",
            },
            "The specified type must match the base type for the role",
        ),
        (
            {"enrollment[type]": "Bogus"},
            "Invalid type, Can't create an enrollment without a user. "
            "Include enrollment[user_id] to create an enrollment",
        ),
        (
            {"enrollment[user_id]": "{user}", "enrollment[enrollment_state]": "asleep"},
            "Invalid enrollment_state asleep",
        ),
    ],
)
def test_enroll_refuses_bad_parameters_as_canvas_does(
    client: Any,
    directory: Directory,
    admin: Caller,
    outsider: Caller,
    course: int,
    data: dict[str, str],
    message: str,
) -> None:
    form = {name: value.replace("{user}", str(outsider.person.id)) for name, value in data.items()}
    before = rows(directory)
    refused = client.post(f"{COURSES}/{course}/enrollments", headers=admin.headers, data=form)
    assert (refused.status_code, refused.json()) == (400, {"message": message})
    assert rows(directory) == before


def test_enroll_unknown_user_or_course_is_not_found_and_a_concluded_course_takes_none(
    client: Any, directory: Directory, admin: Caller, outsider: Caller, course: int
) -> None:
    before = rows(directory)
    unknown = client.post(
        f"{COURSES}/{course}/enrollments", headers=admin.headers, data={"enrollment[user_id]": "424242"}
    )
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)
    no_course = client.post(
        f"{COURSES}/424242/enrollments",
        headers=admin.headers,
        data={"enrollment[user_id]": str(outsider.person.id)},
    )
    assert (no_course.status_code, no_course.json()) == (404, NOT_FOUND)
    for raw in ("\u00b2", "1\u0663"):  # digits to str.isdigit, not to int()
        odd = client.get(f"{COURSES}/{raw}", headers=admin.headers)
        assert (odd.status_code, odd.json()) == (404, NOT_FOUND), raw
    assert rows(directory) == before

    async def conclude(session: Any) -> None:
        await session.execute(update(Course).where(Course.id == course).values(workflow_state="completed"))

    in_session(directory, conclude)
    concluded = rows(directory)
    refused = client.post(
        f"{COURSES}/{course}/enrollments",
        headers=admin.headers,
        data={"enrollment[user_id]": str(outsider.person.id)},
    )
    assert (refused.status_code, refused.json()) == (
        400,
        {"message": "Can't add an enrollment to a concluded course."},
    )
    assert rows(directory) == concluded
