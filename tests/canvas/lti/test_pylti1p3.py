"""pylti1p3, unmodified, as the tool: the OIDC login and the launch it validates with
``MessageLaunch``, for a resource link and for deep linking (spec lti13.md 2 to 4, 8, 9)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.message_launch import MessageLaunch
from sqlalchemy import select

from lmsauth.canvas.courses.gradebook import Assignment
from lmsauth.canvas.courses.gradebook import LineItem as GradebookLineItem
from lmsauth.canvas.lti.models import LtiResourceLink
from tests.canvas.lti.conftest import Classroom
from tests.canvas.lti.support import AGS, NRPS, form, launch, signed_in_browser
from tests.conftest import Directory

P = "https://purl.imsglobal.org/spec/lti/claim/"
V = "http://purl.imsglobal.org/vocab/lis/v2/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


def test_a_student_launches_the_tool_from_the_course(classroom: Classroom) -> None:
    browser = signed_in_browser(classroom.url, classroom.student)
    steps = launch(browser, classroom.tool_path())
    login = steps.login.data
    assert steps.login.action == classroom.tool.login_url
    assert login["iss"] == classroom.url
    assert login["client_id"] == classroom.platform.client_id
    assert login["lti_deployment_id"] == classroom.platform.deployment_id
    assert login["target_link_uri"] == classroom.tool.launch_url
    assert login["canvas_environment"] == "prod" and login["lti_storage_target"] == "post_message_forwarding"
    assert steps.tool is not None and steps.tool.status_code == 200, classroom.tool.errors
    assert "Sam Student launched the tool in Biology 101" in steps.tool.text

    data = classroom.tool.launches[-1]
    token = steps.response.data["id_token"] if steps.response else ""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"]
    jwks = browser.get("/api/lti/security/jwks").json()
    assert header["kid"] in [key["kid"] for key in jwks["keys"]]
    assert header["kid"] not in [key["kid"] for key in browser.get("/login/oauth2/jwks").json()["keys"]]
    assert data["aud"] == data["azp"] == classroom.platform.client_id
    assert data["exp"] - data["iat"] == 3600
    assert data[P + "message_type"] == "LtiResourceLinkRequest" and data[P + "version"] == "1.3.0"
    assert data[P + "deployment_id"] == classroom.platform.deployment_id
    assert data[P + "roles"] == sorted(
        [V + "institution/person#Student", V + "membership#Learner", V + "system/person#User"]
    )
    context = data[P + "context"]
    assert context["title"] == "Biology 101" and context["label"] == "BIO101" and len(context["id"]) == 40
    assert data[P + "resource_link"]["id"] == context["id"]
    assert data["name"] == "Sam Student" and data["email"] == "sam@example.edu"
    assert data[P + "custom"] == {"course": str(classroom.course_id), "unknown": "$Person.sourcedId"}
    assert data["https://www.instructure.com/placement"] == "course_navigation"
    services = data["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]
    assert services["context_memberships_url"] == (
        f"{classroom.url}/api/lti/courses/{classroom.course_id}/names_and_roles"
    )
    ags = data["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert ags["scope"] == AGS and ags["lineitems"].endswith(
        f"/api/lti/courses/{classroom.course_id}/line_items"
    )
    assert NRPS not in ags["scope"]


def test_a_teacher_gets_instructor_roles(classroom: Classroom) -> None:
    browser = signed_in_browser(classroom.url, classroom.teacher)
    steps = launch(browser, classroom.tool_path())
    assert steps.tool is not None and steps.tool.status_code == 200, classroom.tool.errors
    assert classroom.tool.launches[-1][P + "roles"] == sorted(
        [V + "institution/person#Instructor", V + "membership#Instructor", V + "system/person#User"]
    )


def test_deep_linking_makes_links_that_launch(classroom: Classroom, directory: Directory) -> None:
    classroom.tool.deep_link_items = [
        DeepLinkResource()
        .set_url(classroom.tool.launch_url + "?chapter=1")
        .set_title("Chapter 1")
        .set_custom_params({"chapter": "1"}),
        DeepLinkResource()
        .set_url(classroom.tool.launch_url + "?quiz=1")
        .set_title("Quiz 1")
        .set_lineitem(LineItem().set_score_maximum(10).set_label("Quiz 1").set_tag("quiz")),
    ]
    browser = signed_in_browser(classroom.url, classroom.teacher)
    steps = launch(browser, classroom.tool_path("launch_type=link_selection"))
    assert steps.tool is not None and steps.tool.status_code == 200, classroom.tool.errors
    data = classroom.tool.launches[-1]
    assert data[P + "message_type"] == "LtiDeepLinkingRequest"
    settings = data["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]
    assert settings["accept_types"] == ["ltiResourceLink"]
    assert data["https://www.instructure.com/placement"] == "link_selection"

    # pylti1p3's own form, posted by the browser to the deep linking return URL.
    answer = form(steps.tool.text, "lti13_deep_link_auto_submit")
    assert answer.action == settings["deep_link_return_url"]
    page = browser.post(answer.action, data=answer.data)
    assert page.status_code == 200, page.text
    assert "Chapter 1" in page.text and "Quiz 1" in page.text and "out of 10" in page.text
    links = [row[0] for row in directory.query(select(LtiResourceLink).order_by(LtiResourceLink.id))]
    assert [(link.title, link.custom, link.placement) for link in links] == [
        ("Chapter 1", {"chapter": "1"}, "link_selection"),
        ("Quiz 1", {}, "link_selection"),
    ]
    assert links[1].line_item == {"scoreMaximum": 10, "label": "Quiz 1", "tag": "quiz"}

    # The link launches as a resource link whose id is the link's, at the link's URL.
    steps = launch(browser, classroom.tool_path(f"resource_link_id={links[0].uuid}"))
    assert steps.tool is not None and steps.tool.status_code == 200, classroom.tool.errors
    data = classroom.tool.launches[-1]
    assert data[P + "resource_link"] == {"id": links[0].uuid, "title": "Chapter 1", "description": None}
    assert data[P + "target_link_uri"] == classroom.tool.launch_url + "?chapter=1"
    assert data[P + "custom"]["chapter"] == "1"
    assert "lineitem" not in data[AGS_CLAIM]

    # The quiz became an unpublished assignment with the line item the deep link asked for, in
    # the course's gradebook, and its launch names that line item (spec lti13.md 3.2, 8).
    (item, assignment) = directory.query(
        select(GradebookLineItem, Assignment).join(
            Assignment, Assignment.id == GradebookLineItem.assignment_id
        )
    )[0]
    assert (item.label, item.score_maximum, item.tag, item.resource_link_id) == (
        "Quiz 1",
        10,
        "quiz",
        links[1].uuid,
    )
    assert (assignment.name, assignment.workflow_state) == ("Quiz 1", "unpublished")
    course_page = browser.get(f"/courses/{classroom.course_id}")
    gradebook = browser.get(f"/courses/{classroom.course_id}/gradebook")
    assert 'id="gradebook-link"' in course_page.text and "Quiz 1" in gradebook.text
    steps = launch(browser, classroom.tool_path(f"resource_link_id={links[1].uuid}"))
    assert steps.tool is not None and steps.tool.status_code == 200, classroom.tool.errors
    ags = classroom.tool.launches[-1][AGS_CLAIM]
    assert ags["lineitem"] == f"{classroom.url}/api/lti/courses/{classroom.course_id}/line_items/{item.id}"
    assert ags["lineitems"] == f"{classroom.url}/api/lti/courses/{classroom.course_id}/line_items"


def test_a_launched_tool_reads_the_roster_and_grades_through_the_launchs_services(
    classroom: Classroom, directory: Directory
) -> None:
    """The whole tool: a deep link makes a graded quiz; the student's launch of it hands the
    tool its services; the tool's back end reads the roster (``get_nrps().get_members()``) and
    puts a score at the launch's own ``lineitem`` (``get_ags().put_grade``) with a service token
    bought by a client assertion; the teacher then sees the grade in the gradebook."""
    classroom.tool.deep_link_items = [
        DeepLinkResource()
        .set_url(classroom.tool.launch_url + "?quiz=2")
        .set_title("Quiz 2")
        .set_lineitem(LineItem().set_score_maximum(20).set_label("Quiz 2")),
    ]
    teacher = signed_in_browser(classroom.url, classroom.teacher)
    steps = launch(teacher, classroom.tool_path("launch_type=link_selection"))
    assert steps.tool is not None, classroom.tool.errors
    answer = form(steps.tool.text, "lti13_deep_link_auto_submit")
    assert teacher.post(answer.action, data=answer.data).status_code == 200
    (link,) = [row[0] for row in directory.query(select(LtiResourceLink))]

    def grade_the_launching_student(message: MessageLaunch) -> Any:
        data = message.get_launch_data()
        members = message.get_nrps().get_members()
        grade = (
            Grade()
            .set_score_given(15)
            .set_score_maximum(20)
            .set_timestamp(datetime.now(UTC).isoformat())
            .set_activity_progress("Completed")
            .set_grading_progress("FullyGraded")
            .set_user_id(data["sub"])
        )
        return members, message.get_ags().put_grade(grade)

    classroom.tool.on_launch = grade_the_launching_student
    student = signed_in_browser(classroom.url, classroom.student)
    steps = launch(student, classroom.tool_path(f"resource_link_id={link.uuid}"))
    assert steps.tool is not None and steps.tool.status_code == 200, classroom.tool.errors
    members, put = classroom.tool.service_results[-1]
    sub = classroom.tool.launches[-1]["sub"]
    assert sorted((m["name"], m["roles"][0].rsplit("#")[-1]) for m in members) == [
        ("Sam Student", "Learner"),
        ("Tess Teacher", "Instructor"),
    ]
    assert [m["user_id"] for m in members if m["name"] == "Sam Student"] == [sub]
    assert put["body"]["resultUrl"].startswith(classroom.tool.launches[-1][AGS_CLAIM]["lineitem"])
    gradebook = teacher.get(f"/courses/{classroom.course_id}/gradebook")
    assert "Quiz 2" in gradebook.text and ">15<" in gradebook.text.replace(" ", "")
