"""The deep linking response's refusals (spec lti13.md 8): the JWT checked as Canvas checks it
(key by ``iss``, signature, ``aud``, ``iat``/``exp`` windows by ``core.clock``, ``nonce``), the
key's state, the return URL's ``data``, and who may add content to the course."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
from pylti1p3.deep_link_resource import DeepLinkResource
from sqlalchemy import func, select
from starlette.testclient import TestClient

from lmsauth.canvas.lti.models import LtiResourceLink
from lmsauth.core import clock
from tests.canvas.lti.conftest import Classroom
from tests.canvas.lti.support import (
    auth_request,
    enroll,
    form,
    launch,
    lti_key,
    make_course,
    set_key,
    signed_in_browser,
)
from tests.canvas.lti.tool import Platform, Tool, rsa_key_pair, serve_tool
from tests.conftest import Directory, LiveServer, Person
from tests.flows import log_in

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
P = "https://purl.imsglobal.org/spec/lti/claim/"


class Teacher:
    """A teacher's browser that opens the tool's link selection and answers for the tool."""

    def __init__(self, client: TestClient, tool: Tool, platform: Platform, course_id: int) -> None:
        self.client, self.tool, self.platform, self.course_id = client, tool, platform, course_id

    def return_url(self) -> str:
        page = self.client.get(
            f"/courses/{self.course_id}/external_tools/{self.platform.tool_id}?launch_type=link_selection"
        )
        login = form(page.text, "tool_form").data
        params = auth_request(login, self.tool.launch_url, nonce=uuid.uuid4().hex, state=None)
        fields = form(
            self.client.get("/api/lti/authorize?" + urlencode(params)).text, "authorization_redirect_form"
        )
        claims = jwt.decode(fields.data["id_token"], options={"verify_signature": False})
        url: str = claims[DL + "deep_linking_settings"]["deep_link_return_url"]
        return url

    def response_jwt(self, *, key: str | None = None, **changes: Any) -> str:
        """pylti1p3's response JWT (spec 8), changed; a change to None drops the claim."""
        now = clock.timestamp()
        claims: dict[str, Any] = {
            "iss": self.platform.client_id,
            "aud": [self.platform.issuer],
            "iat": now,
            "exp": now + 600,
            "nonce": "nonce-" + uuid.uuid4().hex,
            P + "deployment_id": self.platform.deployment_id,
            P + "message_type": "LtiDeepLinkingResponse",
            P + "version": "1.3.0",
            DL + "content_items": [
                {"type": "ltiResourceLink", "title": "Chapter 2", "url": self.tool.launch_url}
            ],
            DL + "data": None,
        }
        claims.update(changes)
        claims = {name: value for name, value in claims.items() if value is not None or name == DL + "data"}
        return jwt.encode(claims, key or self.tool.private_pem, algorithm="RS256")

    def post(self, token: str | None, url: str | None = None) -> Any:
        target = urlsplit(url or self.return_url())
        return self.client.post(f"{target.path}?{target.query}", data={} if token is None else {"JWT": token})


@pytest.fixture
def teacher(
    client: TestClient, directory: Directory, settings: Any, tool_key_pair: tuple[str, str]
) -> Teacher:
    tool = Tool(*tool_key_pair, base="https://tool.example")
    course_id = make_course(settings)
    person = directory.user("teacher@example.edu", name="Tess Teacher")
    enroll(settings, course_id, person, "TeacherEnrollment")
    platform = lti_key(settings, tool)
    assert log_in(client, person.login, person.password).status_code == 302
    return Teacher(client, tool, platform, course_id)


def refused(response: Any, field: str, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"errors": {field: [message]}}


def links(directory: Directory) -> int:
    return int(directory.query(select(func.count()).select_from(LtiResourceLink))[0][0])


def test_a_valid_response_adds_the_link(teacher: Teacher, directory: Directory) -> None:
    page = teacher.post(teacher.response_jwt(aud=teacher.platform.issuer))  # aud as a string works too
    assert page.status_code == 200, page.text
    assert "Chapter 2" in page.text and links(directory) == 1


def test_a_malformed_or_missing_jwt(teacher: Teacher, directory: Directory) -> None:
    url = teacher.return_url()
    refused(teacher.post(None, url), "jwt", "JWT format is invalid")
    refused(teacher.post("not.a.jwt", url), "jwt", "JWT format is invalid")
    assert links(directory) == 0


def test_an_unknown_client(teacher: Teacher) -> None:
    refused(teacher.post(teacher.response_jwt(iss="10000000009999")), "jwt", "Client not found")
    refused(teacher.post(teacher.response_jwt(iss="someone")), "jwt", "Client not found")


def test_an_inactive_key(teacher: Teacher, settings: Any) -> None:
    url = teacher.return_url()
    set_key(settings, teacher.platform.client_id, workflow_state="inactive")
    refused(teacher.post(teacher.response_jwt(), url), "developer_key", "Developer key inactive in context")


def test_a_jwt_signed_by_another_key_or_for_another_audience(teacher: Teacher, directory: Directory) -> None:
    failure = "JWT verification failure"
    other_key, _ = rsa_key_pair()
    refused(teacher.post(teacher.response_jwt(key=other_key)), "jwt", failure)
    refused(teacher.post(teacher.response_jwt(aud=["https://canvas.instructure.com"])), "jwt", failure)
    assert links(directory) == 0


def test_the_time_windows_follow_the_clock(teacher: Teacher) -> None:
    now = clock.timestamp()
    refused(
        teacher.post(teacher.response_jwt(iat=now - 301)),
        "jwt",
        "JWT verification failure: the 'iat' is invalid",
    )
    refused(
        teacher.post(teacher.response_jwt(iat=now + 40)),
        "jwt",
        "JWT verification failure: the 'iat' is invalid",
    )
    refused(
        teacher.post(teacher.response_jwt(exp=now - 1)),
        "jwt",
        "JWT verification failure: the JWT has expired",
    )
    token = teacher.response_jwt()
    url = teacher.return_url()
    clock.advance(301)  # the same JWT, 5 minutes later
    refused(teacher.post(token, url), "jwt", "JWT verification failure: the 'iat' is invalid")


def test_the_nonce_is_required(teacher: Teacher) -> None:
    refused(
        teacher.post(teacher.response_jwt(nonce=None)),
        "jwt",
        "JWT verification failure: the nonce (jti) is missing",
    )


def test_the_return_data_is_checked(teacher: Teacher, settings: Any) -> None:
    token = teacher.response_jwt()
    message = "The deep linking return data is invalid or has expired"
    refused(
        teacher.client.post(f"/courses/{teacher.course_id}/deep_linking_response", data={"JWT": token}),
        "data",
        message,
    )
    elsewhere = make_course(settings, name="Chemistry", code="CHEM")
    url = urlsplit(teacher.return_url())
    response = teacher.client.post(
        f"/courses/{elsewhere}/deep_linking_response?{url.query}", data={"JWT": token}
    )
    refused(response, "data", message)
    assert (
        teacher.client.post(
            f"/courses/999/deep_linking_response?{url.query}", data={"JWT": token}
        ).status_code
        == 404
    )


def test_only_those_who_may_change_the_course_add_links(
    teacher: Teacher, directory: Directory, settings: Any
) -> None:
    url = teacher.return_url()
    student = directory.user("student@example.edu", name="Sam Student")
    enroll(settings, teacher.course_id, student)
    as_student = TestClient(teacher.client.app, base_url="http://testserver", follow_redirects=False)
    assert log_in(as_student, student.login, student.password).status_code == 302
    target = urlsplit(url)
    response = as_student.post(f"{target.path}?{target.query}", data={"JWT": teacher.response_jwt()})
    assert response.status_code == 401 and links(directory) == 0
    # Without a session (a cross-site post drops the Lax cookie) the launching teacher counts.
    anonymous = TestClient(teacher.client.app, base_url="http://testserver", follow_redirects=False)
    assert (
        anonymous.post(f"{target.path}?{target.query}", data={"JWT": teacher.response_jwt()}).status_code
        == 200
    )
    assert links(directory) == 1


def test_a_line_item_needs_a_score_maximum(teacher: Teacher, directory: Directory) -> None:
    items = [
        {
            "type": "ltiResourceLink",
            "title": "Quiz",
            "url": teacher.tool.launch_url,
            "lineItem": {"label": "Quiz"},
        },
        {"type": "html", "html": "<p>hi</p>", "title": "Snippet"},
    ]
    page = teacher.post(teacher.response_jwt(**{DL + "content_items": items}))
    assert page.status_code == 200
    assert "lineItem.scoreMaximum is a required field" in page.text
    assert "only ltiResourceLink items are added to a course" in page.text
    assert links(directory) == 0


def test_a_key_with_a_jwk_set_url_needs_the_matching_kid(
    live_server: LiveServer, directory: Directory, tool_key_pair: tuple[str, str]
) -> None:
    """pylti1p3 names its key by its RFC 7638 thumbprint, which its JWK set publishes."""
    settings = live_server.settings
    with contextlib.contextmanager(serve_tool)(Tool(*tool_key_pair)) as tool:
        course_id = make_course(settings)
        person: Person = directory.user("teacher@example.edu", name="Tess Teacher")
        enroll(settings, course_id, person, "TeacherEnrollment")
        platform = lti_key(settings, tool, jwk_url=True)
        tool.configure([platform])
        classroom = Classroom(live_server, tool, platform, course_id, person, person)
        tool.deep_link_items = [DeepLinkResource().set_url(tool.launch_url).set_title("By JWK set")]
        browser = signed_in_browser(classroom.url, person)
        steps = launch(browser, classroom.tool_path("launch_type=assignment_selection"))
        assert steps.tool is not None and steps.tool.status_code == 200, tool.errors
        answer = form(steps.tool.text, "lti13_deep_link_auto_submit")
        assert browser.post(answer.action, data=answer.data).status_code == 200
        assert links(directory) == 1
        # A JWT whose kid the set does not hold is refused.
        steps = launch(browser, classroom.tool_path("launch_type=assignment_selection"))
        assert steps.tool is not None
        answer = form(steps.tool.text, "lti13_deep_link_auto_submit")
        unverified = jwt.decode(answer.data["JWT"], options={"verify_signature": False})
        forged = jwt.encode(
            unverified, tool.private_pem, algorithm="RS256", headers={"kid": "not-in-the-set"}
        )
        response = browser.post(answer.action, data={"JWT": forged})
        assert response.status_code == 400
        assert response.json() == {"errors": {"jwt": ["JWT verification failure"]}}
        assert links(directory) == 1
