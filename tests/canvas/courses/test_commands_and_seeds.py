"""``lmsauth course`` and ``lmsauth enrollment`` as operators run them (one JSON object per
``--json``; run in this process by ``lmsauth_in_process``, as ``tests/core/test_cli.py`` runs
other verbs as a subprocess), and ``[[courses]]`` in seed files, the demo seed's among them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lmsauth import seed
from lmsauth.canvas.courses.models import Course, Enrollment
from lmsauth.canvas.models import Login
from lmsauth.core.db import Database
from lmsauth.settings import Settings
from tests.canvas.courses.conftest import rows
from tests.conftest import Directory, run
from tests.core.test_cli import lmsauth_in_process as lmsauth
from tests.core.test_cli import one_json_object, stored


def test_course_and_enrollment_verbs(tmp_path: Path) -> None:
    for login in ("terry@example.edu", "sam@example.edu"):
        made = lmsauth(tmp_path, "user", "create", "--login", login, "--password", "pw-123456", "--name", "T")
        assert made.returncode == 0, made.stderr
    created = one_json_object(
        lmsauth(tmp_path, "course", "create", "--name", "Biology 101 Fall", "--sis-id", "BIO-1", "--json")
    )
    assert created["course_code"] == "Biology 101"
    assert created["workflow_state"] == "available"
    assert len(created["lti_context_id"]) == 40
    course_id = str(created["id"])
    teacher = one_json_object(
        lmsauth(
            tmp_path, "enrollment", "create", "--course", course_id, "--user", "terry@example.edu",
            "--role", "teacher", "--json",
        )
    )  # fmt: skip
    assert (teacher["type"], teacher["enrollment_state"]) == ("TeacherEnrollment", "active")
    student = lmsauth(
        tmp_path, "enrollment", "create", "--course", "sis_course_id:BIO-1", "--user", "SAM@example.edu",
        "--role", "student", "--state", "invited",
    )  # fmt: skip
    assert student.returncode == 0, student.stderr
    listed = one_json_object(lmsauth(tmp_path, "enrollment", "list", "--course", course_id, "--json"))
    assert [(row["login"], row["role"], row["enrollment_state"]) for row in listed["enrollments"]] == [
        ("sam@example.edu", "student", "invited"),
        ("terry@example.edu", "teacher", "active"),
    ]
    courses = one_json_object(lmsauth(tmp_path, "course", "list", "--json"))["courses"]
    assert [course["id"] for course in courses] == [created["id"]]

    before = stored(tmp_path, select(Course.id, Course.name)), stored(tmp_path, select(Enrollment.id))
    for args, message in (
        (("course", "create", "--name", "Other", "--sis-id", "BIO-1"), 'SIS ID "BIO-1" is already in use'),
        (
            ("enrollment", "create", "--course", "99", "--user", "sam@example.edu", "--role", "ta"),
            "no course",
        ),
        (
            ("enrollment", "create", "--course", course_id, "--user", "nobody@x.edu", "--role", "ta"),
            "no user",
        ),
    ):
        refused = lmsauth(tmp_path, *args)
        assert refused.returncode == 1, args
        assert message in refused.stderr, refused.stderr
    wrong_role = lmsauth(
        tmp_path, "enrollment", "create", "--course", course_id, "--user", "x", "--role", "dean"
    )
    assert wrong_role.returncode == 2
    assert (
        stored(tmp_path, select(Course.id, Course.name)),
        stored(tmp_path, select(Enrollment.id)),
    ) == before


def _load(settings: Settings, text: str) -> seed.SeedResult:
    async def work() -> seed.SeedResult:
        db = Database(settings.resolved_database_url)
        try:
            return await seed.load(db, text, settings)
        finally:
            await db.dispose()

    result: seed.SeedResult = run(work())
    return result


def test_the_demo_seed_has_a_course_with_a_teacher_and_students_and_loads_twice(
    settings: Settings, directory: Directory
) -> None:
    first = _load(settings, seed.demo_seed_text())
    [course] = first.courses
    assert (course["name"], course["course_code"], course["workflow_state"]) == (
        "Demo Course",
        "DEMO-101",
        "available",
    )
    assert sorted((row["login"], row["role"]) for row in course["enrollments"]) == [
        ("student2@example.edu", "student"),
        ("student@example.edu", "student"),
        ("teacher@example.edu", "teacher"),
    ]
    before = rows(directory)
    context_id = directory.query(select(Course.lti_context_id))
    second = _load(settings, seed.demo_seed_text())
    assert second.courses == first.courses
    assert rows(directory) == before
    assert directory.query(select(Course.lti_context_id)) == context_id


def test_a_reseed_restores_a_changed_enrollment(settings: Settings, directory: Directory) -> None:
    text = """
[[users]]
login = "t@example.edu"
password = "t-password"
name = "T"

[[courses]]
name = "History 2"
published = false
enrollments = [{ login = "t@example.edu", role = "teacher" }]
"""
    [course] = _load(settings, text).courses
    assert (course["course_code"], course["workflow_state"]) == ("History 2", "unpublished")

    async def drop(session: Any) -> None:
        enrollment = await session.scalar(select(Enrollment))
        enrollment.workflow_state = "deleted"

    run(directory._in_session(drop))
    _load(settings, text)
    assert directory.query(select(Enrollment.workflow_state)) == [("active",)]


COURSE = '[[courses]]\nname = "X"\nenrollments = '


@pytest.mark.parametrize(
    ("courses", "message"),
    [
        ('[[courses]]\ncode = "X"', "courses: name must be a non-empty string"),
        ('[[courses]]\nname = "X"\ncolour = "red"', "courses: unknown fields colour"),
        (
            '[[courses]]\nname = "X"\nenrollments = [{ login = "a@example.edu", role = "dean" }]',
            "role must be",
        ),
        ('[[courses]]\nname = "X"\nenrollments = [{ login = "nobody@example.edu", role = "ta" }]', "no user"),
        (
            '[[courses]]\nname = "X"\nenrollments = [{ login = "a@example.edu", role = "ta", state = "x" }]',
            "Invalid",
        ),
    ],
)
def test_a_bad_course_in_a_seed_writes_nothing(
    settings: Settings, directory: Directory, courses: str, message: str
) -> None:
    text = '[[users]]\nlogin = "a@example.edu"\npassword = "a-password"\nname = "A"\n\n' + courses
    with pytest.raises(seed.SeedError, match=message):
        _load(settings, text)
    assert directory.query(select(Login.id)) == []
    assert rows(directory) == [[], []]
