"""Headless Chromium opens the tool from the course page's list of tools and lands on the
tool's page: with scripts, every step posts itself; without, the person presses each button."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browsers import PageProblems, outside_playwright
from tests.canvas.lti.conftest import build_classroom
from tests.canvas.lti.tool import Tool
from tests.conftest import Directory, LiveServer

pytestmark = pytest.mark.browser


def test_chromium_launches_the_tool_from_the_course(
    chromium: Browser, live_server: LiveServer, directory: Directory, tool: Tool
) -> None:
    classroom = outside_playwright(lambda: build_classroom(live_server, directory, tool))
    for scripts in (True, False):
        context = chromium.new_context(java_script_enabled=scripts)
        page = context.new_page()
        problems = PageProblems(page)
        try:
            page.goto(f"{classroom.url}/login/canvas")
            page.get_by_label("Email").fill(classroom.student.login)
            page.get_by_label("Password").fill(classroom.student.password)
            page.get_by_role("button", name="Log In").click()
            page.wait_for_url(f"{classroom.url}/")
            page.goto(f"{classroom.url}/courses/{classroom.course_id}")  # the course page
            page.get_by_role("link", name="Test Tool", exact=True).click()
            if not scripts:
                page.get_by_role("button", name="Launch Test Tool").click()
                page.get_by_role("button", name="Continue to the tool").click()
            page.wait_for_url(classroom.tool.launch_url)
            assert page.locator("#launched").inner_text() == "Sam Student launched the tool in Biology 101"
        finally:
            context.close()
        assert not [m for m in problems.messages if "Content Security Policy" in m], problems.messages
    assert len(classroom.tool.launches) == 2 and classroom.tool.errors == []
