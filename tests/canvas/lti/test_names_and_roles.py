"""Names and Role Provisioning Services (spec lti13.md 6): pylti1p3's
``NamesRolesProvisioningService`` reads the course's people, and every refusal of spec 5.3
has its test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from pylti1p3.exception import LtiServiceException
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector

from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.lti import line_items
from lmsauth.canvas.lti.user_ids import lti_user_id
from lmsauth.canvas.models import User
from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.core import clock
from tests.canvas.lti.services_support import (
    NRPS_SCOPE,
    SCORE,
    LtiWorld,
    classroom,
    registration,
    serve,
    service_token,
    tool_key_pair,
)
from tests.conftest import run
from tests.contract.conftest import conforms

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
LEARNER, INSTRUCTOR = MEMBERSHIP + "#Learner", MEMBERSHIP + "#Instructor"
TA = MEMBERSHIP + "/Instructor#TeachingAssistant"
MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


def members_url(world: LtiWorld, course: str = "course") -> str:
    return f"/api/lti/courses/{world.courses[course]}/names_and_roles"


def get(client: Any, url: str, token: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(url, params=params, headers=headers)


def refused(response: Any, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    kind = {401: "unauthorized", 400: "bad_request"}[status]
    assert response.json() == {"errors": {"type": kind, "message": message}}


def uuid_of(world: LtiWorld, user_id: int) -> str:
    return str(world.query(User.__table__.select().where(User.id == user_id))[0].uuid)


def test_pylti1p3_reads_the_course_people_page_by_page(settings, world: LtiWorld) -> None:
    ids = classroom(world)
    world.update(ExternalTool, world.tools["tool"], privacy_level="public")
    with serve(settings) as base:
        connector = ServiceConnector(registration(base, world.client_id()))
        url = f"{base}{members_url(world)}?limit=2"
        service = NamesRolesProvisioningService(connector, {"context_memberships_url": url})
        members = service.get_members()
        context = service.get_context()
    assert context == {"id": context["id"], "label": "COURSE", "title": "Course course"}
    by_id = {m["user_id"]: m for m in members}
    expected = {role: lti_user_id(uuid_of(world, ids[role])) for role in ids}
    assert set(by_id) == {
        expected[r] for r in ("teacher", "ta", "student", "student2", "designer", "observer")
    }
    assert len(members) == 6
    teacher = by_id[expected["teacher"]]
    assert teacher["roles"] == [INSTRUCTOR, LEARNER]
    assert (teacher["name"], teacher["given_name"], teacher["family_name"]) == (
        "Tess Teacher",
        "Tess",
        "Teacher",
    )
    assert teacher["email"] == "teacher@example.edu"
    assert teacher["status"] == "Active"
    assert len(teacher["lti11_legacy_user_id"]) == 40
    assert teacher["picture"].endswith("/images/messages/avatar-50.png")
    assert by_id[expected["ta"]]["roles"] == [TA, INSTRUCTOR]
    assert by_id[expected["designer"]]["roles"] == [MEMBERSHIP + "#ContentDeveloper"]
    assert by_id[expected["observer"]]["roles"] == [MEMBERSHIP + "#Mentor"]


def test_body_media_type_and_links(client, world: LtiWorld) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    url = members_url(world)
    response = get(client, url, token, limit=2, page=2, zeta="1", alpha="2")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    body = response.json()
    assert body["id"] == f"http://testserver{url}?limit=2&page=2&zeta=1&alpha=2"
    assert len(body["members"]) == 2
    base = f"http://testserver{url}?alpha=2&zeta=1&"
    assert response.headers["link"] == ",".join(
        [
            f'<{base}page=2&per_page=2>; rel="current"',
            f'<{base}page=3&per_page=2>; rel="next"',
            f'<{base}page=1&per_page=2>; rel="prev"',
            f'<{base}page=1&per_page=2>; rel="first"',
            f'<{base}page=3&per_page=2>; rel="last"',
        ]
    )


def test_page_size_defaults_to_and_stops_at_50(client, world: LtiWorld) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    for params in ({}, {"limit": 500}, {"per_page": 100}):
        link = get(client, members_url(world), token, **params).headers["link"]
        assert "per_page=50>" in link
    assert "per_page=3>" in get(client, members_url(world), token, per_page=3).headers["link"]


def test_privacy_levels(client, world: LtiWorld) -> None:
    ids = classroom(world)
    token = service_token(client, world.client_id())
    fields = {
        "anonymous": {"status", "user_id", "lti11_legacy_user_id", "roles"},
        "name_only": {
            "status",
            "user_id",
            "lti11_legacy_user_id",
            "roles",
            "name",
            "given_name",
            "family_name",
        },
        "email_only": {"status", "user_id", "lti11_legacy_user_id", "roles", "email"},
    }
    for level, expected in fields.items():
        world.update(ExternalTool, world.tools["tool"], privacy_level=level)
        members = get(client, members_url(world), token).json()["members"]
        student = next(m for m in members if m["user_id"] == lti_user_id(uuid_of(world, ids["student"])))
        assert set(student) == expected, level


def test_role_filter(client, world: LtiWorld) -> None:
    classroom(world)
    token = service_token(client, world.client_id())

    def names(role: str) -> list[str]:
        world.update(ExternalTool, world.tools["tool"], privacy_level="name_only")
        return sorted(m["name"] for m in get(client, members_url(world), token, role=role).json()["members"])

    assert names(LEARNER) == ["Sam Student", "Sue Second", "Tess Teacher"]
    assert names(INSTRUCTOR) == ["Tess Teacher", "Tom Assistant"]
    assert names("Learner") == []


def test_rlid(client, world: LtiWorld) -> None:
    ids = classroom(world)
    token = service_token(client, world.client_id())
    context_id = world.query(Course.__table__.select().where(Course.id == world.courses["course"]))[0]
    ok = get(client, members_url(world), token, rlid=context_id.lti_context_id)
    assert ok.status_code == 200 and len(ok.json()["members"]) == 6
    assert not any("message" in m for m in ok.json()["members"])
    refused(
        get(client, members_url(world), token, rlid="no-such-link"),
        400,
        "Tool does not have access to rlid or rlid does not exist",
    )
    conforms(ok, "GET", "/api/lti/courses/{course_id}/names_and_roles")
    # A resource link of the tool's (a deep link's assignment) adds each member's message.
    deep_link(world, resource_link_id="rl-1")
    linked = get(client, members_url(world), token, rlid="rl-1")
    assert linked.status_code == 200
    conforms(linked, "GET", "/api/lti/courses/{course_id}/names_and_roles")
    student = next(
        m for m in linked.json()["members"] if m["user_id"] == lti_user_id(uuid_of(world, ids["student"]))
    )
    assert student["message"] == [
        {
            "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
            "locale": "en",
            "https://purl.imsglobal.org/spec/lti/claim/custom": {},
            "https://www.instructure.com/canvas_user_id": ids["student"],
        }
    ]
    # Another tool's resource link is not this tool's.
    world.key("other-tool")
    world.install("other-tool")
    other = service_token(client, world.client_id("other-tool"))
    refused(
        get(client, members_url(world), other, rlid="rl-1"),
        400,
        "Tool does not have access to rlid or rlid does not exist",
    )


def test_pylti1p3_members_of_a_resource_link(settings, world: LtiWorld) -> None:
    classroom(world)
    deep_link(world, resource_link_id="rl-1")
    with serve(settings) as base:
        connector = ServiceConnector(registration(base, world.client_id()))
        url = f"{base}{members_url(world)}"
        members = NamesRolesProvisioningService(connector, {"context_memberships_url": url}).get_members(
            "rl-1"
        )
    assert len(members) == 6 and all(m["message"] for m in members)


def deep_link(world: LtiWorld, resource_link_id: str) -> None:
    async def work(session: Any) -> None:
        await line_items.create_from_deep_link(
            session,
            course_id=world.courses["course"],
            developer_key_id=world.keys["tool"],
            line_item={"scoreMaximum": 10, "label": "Lab"},
            resource_link_id=resource_link_id,
        )

    run(world._in_session(work))


def test_account_install_serves_every_course_of_the_account(client, world: LtiWorld) -> None:
    classroom(world)
    world.key("account-tool")
    world.install("account-tool", course=None)
    token = service_token(client, world.client_id("account-tool"))
    assert get(client, members_url(world, "other"), token).status_code == 200


# ------------------------------------------------------------------ spec 5.3, in order


def test_missing_token(client, world) -> None:
    classroom(world)
    refused(get(client, members_url(world), None), 401, "Missing access token")


def test_not_a_jwt(client, world) -> None:
    classroom(world)
    refused(get(client, members_url(world), "not-a-token"), 401, "Invalid access token format")


def test_a_token_signed_by_another(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "a guessed secret of thirty-two bytes or more", algorithm="HS256")
    refused(get(client, members_url(world), forged), 401, "Invalid access token signature")


def test_another_algorithm(client, world) -> None:
    classroom(world)
    claims = jwt.decode(service_token(client, world.client_id()), options={"verify_signature": False})
    rs256 = jwt.encode(claims, tool_key_pair().private_pem, algorithm="RS256")
    refused(get(client, members_url(world), rs256), 401, "Access token signature algorithm not allowed")


def test_a_users_canvas_token_is_not_a_service_token(client, world) -> None:
    classroom(world)
    refused(get(client, members_url(world), "a" * 64), 401, "Invalid access token format")


def test_expired_token(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    clock.advance(3601)
    refused(get(client, members_url(world), token), 401, "Access token expired")


def test_token_bought_at_another_host(client, app_client, world) -> None:
    classroom(world)
    elsewhere = app_client(base_url="http://lms.example.test")
    token = service_token(elsewhere, world.client_id(), base="http://lms.example.test")
    refused(get(client, members_url(world), token), 401, "Invalid access token field/s: the 'aud' is invalid")


def test_token_of_an_inactive_key(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    world.set_key("tool", workflow_state="inactive")
    refused(get(client, members_url(world), token), 401, "Unknown or inactive Developer Key")


def test_token_without_the_scope(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id(), [SCORE])
    refused(get(client, members_url(world), token), 401, "Insufficient permissions")
    allowed = service_token(client, world.client_id(), [NRPS_SCOPE])
    assert get(client, members_url(world), allowed).status_code == 200


def test_key_switched_off_in_the_account(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    world.set_key("tool", binding_state="off")
    refused(get(client, members_url(world), token), 401, "Invalid Developer Key")


@pytest.mark.parametrize("course_id", ["999", "abc", "99999999999999999999"])
def test_no_such_course(client, world, course_id: str) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    response = get(client, f"/api/lti/courses/{course_id}/names_and_roles", token)
    assert response.status_code == 404
    assert response.json() == {"errors": [{"message": "The specified resource does not exist."}]}


def test_a_token_for_another_tools_course(client, world) -> None:
    classroom(world)
    world.key("stranger")
    world.install("stranger", course="other")
    token = service_token(client, world.client_id("stranger"))
    assert get(client, members_url(world, "other"), token).status_code == 200
    refused(
        get(client, members_url(world), token),
        401,
        "Access Token not linked to a Tool associated with this Context",
    )


def test_a_deleted_tool_links_nothing(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    world.update(ExternalTool, world.tools["tool"], workflow_state="deleted")
    refused(
        get(client, members_url(world), token),
        401,
        "Access Token not linked to a Tool associated with this Context",
    )


def test_tokens_live_one_hour_by_iat(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    # Moved to instants counted from the token's own whole-second iat: advancing the running
    # clock by 3599 s from issue left less than a second, minus the request's own time.
    issued = jwt.decode(token, options={"verify_signature": False})["iat"]
    clock.set_time(datetime.fromtimestamp(issued + 3599, UTC))
    assert get(client, members_url(world), token).status_code == 200
    clock.set_time(datetime.fromtimestamp(issued + 3601, UTC))
    refused(get(client, members_url(world), token), 401, "Access token expired")


def test_responses_match_the_openapi_document(client, world) -> None:
    classroom(world)
    token = service_token(client, world.client_id())
    path = "/api/lti/courses/{course_id}/names_and_roles"
    conforms(get(client, members_url(world), token, limit=2), "GET", path)
    conforms(get(client, members_url(world), None), "GET", path)
    conforms(get(client, members_url(world), token, rlid="x"), "GET", path)
    conforms(get(client, "/api/lti/courses/999/names_and_roles", token), "GET", path)


def test_a_fault_injected_through_the_emulator(settings, world) -> None:
    classroom(world)
    with serve(settings, emulator=True) as base:
        fault = {"path": "/api/lti/courses/*/names_and_roles", "status": 503, "count": 1}
        assert httpx.post(base + "/_emulator/faults", json=fault).status_code == 201
        url = base + members_url(world)
        service = NamesRolesProvisioningService(
            ServiceConnector(registration(base, world.client_id())), {"context_memberships_url": url}
        )
        with pytest.raises(LtiServiceException) as caught:
            service.get_members()
        assert caught.value.response.status_code == 503
        assert caught.value.response.json()["errors"]["type"] == "service_unavailable"
        assert len(service.get_members()) == 6  # the fault was for one request
