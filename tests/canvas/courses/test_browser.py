"""An admin in headless Chromium creates a course and enrolls a student from the console; the
student then finds it under Courses. Screenshots go under ``test-artifacts/courses/``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browsers import ARTIFACTS, PageProblems, chromium_browser, outside_playwright
from tests.conftest import Directory, LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium(live_server: LiveServer, directory: Directory) -> Iterator[Browser]:
    """Started after the test's database and server: playwright runs an event loop in this
    thread, and the backends' session fixtures need it free when they start."""
    with chromium_browser() as browser:
        yield browser


def _sign_in(page: Page, url: str, login: str, password: str) -> None:
    page.goto(f"{url}/login/canvas")
    page.get_by_label("Email").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log In").click()
    page.wait_for_url(f"{url}/")


def test_admin_creates_a_course_and_enrolls_a_student_who_then_sees_it(
    chromium: Browser, live_server: LiveServer, directory: Directory
) -> None:
    outside_playwright(
        lambda: [
            directory.user(
                login="admin@example.edu", password="admin-password", name="Ada Admin", admin=True
            ),
            directory.user(login="sam@example.edu", password="sam-password", name="Sam Student"),
        ]
    )
    shots = ARTIFACTS / "courses"
    shots.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        _sign_in(page, live_server.url, "admin@example.edu", "admin-password")
        page.get_by_role("link", name="Courses").first.click()
        page.get_by_role("link", name="All courses of this account").click()
        page.get_by_label("Name", exact=True).fill("Demo Course")
        page.get_by_label("Course code (from the name when left empty)").fill("DEMO-101")
        page.get_by_label("Publish it now").check()
        page.screenshot(path=str(shots / "create-course.png"))
        page.get_by_role("button", name="Create course").click()
        assert page.locator("h1").inner_text() == "Demo Course"
        page.get_by_label("Login").fill("sam@example.edu")
        page.get_by_label("Role").select_option("student")
        page.get_by_role("button", name="Enroll").click()
        assert page.locator("#people").get_by_text("Student, Sam").is_visible()
        page.screenshot(path=str(shots / "course-page.png"))
    finally:
        context.close()
    assert problems.messages == []

    student = chromium.new_context(java_script_enabled=False)
    page = student.new_page()
    try:
        _sign_in(page, live_server.url, "sam@example.edu", "sam-password")
        page.get_by_role("link", name="Courses").first.click()
        page.get_by_role("link", name="Demo Course").click()
        assert page.locator("#course-code").inner_text() == "DEMO-101"
        assert page.get_by_role("button", name="Enroll").count() == 0
        page.screenshot(path=str(shots / "student-course-page.png"))
    finally:
        student.close()
