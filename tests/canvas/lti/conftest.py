"""Fixtures of the LTI tests: for the launch, the tool (pylti1p3 on a port of its own) and a course
on the live server with a teacher, a student and the tool installed; for the LTI Advantage
services, a world of keys and courses made in the database and a tool's JWK Set on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lmsauth.settings import Settings
from tests.canvas.lti.services_support import JwksServer, LtiWorld
from tests.canvas.lti.support import enroll, lti_key, make_course
from tests.canvas.lti.tool import Platform, Tool, rsa_key_pair, serve_tool
from tests.conftest import Directory, LiveServer, Person


@pytest.fixture(scope="session")
def tool_key_pair() -> tuple[str, str]:
    return rsa_key_pair()


@pytest.fixture
def tool(tool_key_pair: tuple[str, str]) -> Iterator[Tool]:
    with contextlib.contextmanager(serve_tool)(Tool(*tool_key_pair)) as served:
        yield served


@dataclass
class Classroom:
    server: LiveServer
    tool: Tool
    platform: Platform
    course_id: int
    teacher: Person
    student: Person

    @property
    def url(self) -> str:
        return self.server.url

    def tool_path(self, query: str = "") -> str:
        path = f"/courses/{self.course_id}/external_tools/{self.platform.tool_id}"
        return f"{path}?{query}" if query else path


@pytest.fixture
def classroom(live_server: LiveServer, directory: Directory, tool: Tool) -> Classroom:
    return build_classroom(live_server, directory, tool)


def build_classroom(live_server: LiveServer, directory: Directory, tool: Tool) -> Classroom:
    settings = live_server.settings
    course_id = make_course(settings)
    teacher = directory.user("teacher@example.edu", name="Tess Teacher", email="tess@example.edu")
    student = directory.user("student@example.edu", name="Sam Student", email="sam@example.edu")
    enroll(settings, course_id, teacher, "TeacherEnrollment")
    enroll(settings, course_id, student, "StudentEnrollment")
    platform = lti_key(settings, tool, custom={"course": "$Canvas.course.id", "unknown": "$Person.sourcedId"})
    tool.configure([platform])
    return Classroom(live_server, tool, platform, course_id, teacher, student)


@pytest.fixture
def world(settings: Settings) -> LtiWorld:
    return LtiWorld(settings)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server
