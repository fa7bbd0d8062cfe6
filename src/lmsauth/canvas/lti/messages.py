"""The claims of an LTI 1.3 launch (spec lti13.md 3): what Canvas's ``Lti::Messages::JwtMessage``
and its ``ResourceLinkRequest`` and ``DeepLinkingRequest`` put in the id_token, built when the
launch starts (step 1) and signed when the tool's authentication request arrives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.courses.models import Course, Enrollment
from lmsauth.canvas.keys import lti
from lmsauth.canvas.lti.line_items import line_item_url, line_items_url, link_line_item
from lmsauth.canvas.lti.models import LtiResourceLink
from lmsauth.canvas.lti.user_ids import legacy_user_id, lti_user_id
from lmsauth.canvas.models import Account, DeveloperKey, Login, User
from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.canvas.tools import LaunchContext, expand_variable
from lmsauth.core import clock

P = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
PLACEMENT_CLAIM = "https://www.instructure.com/placement"
ID_TOKEN_LIFETIME = 3600  # ``exp`` = step 1 + 1 hour (spec 3.2, 11)
_V = "http://purl.imsglobal.org/vocab/lis/v2/"
SYSTEM_USER = _V + "system/person#User"
# Canvas's ``LIS_V2_LTI_ADVANTAGE_ROLE_MAP`` for course enrollments (spec 3.2).
MEMBERSHIP_ROLES: dict[str, tuple[str, ...]] = {
    "TeacherEnrollment": (_V + "membership#Instructor",),
    "TaEnrollment": (_V + "membership/Instructor#TeachingAssistant", _V + "membership#Instructor"),
    "StudentEnrollment": (_V + "membership#Learner",),
    "DesignerEnrollment": (_V + "membership#ContentDeveloper",),
    "ObserverEnrollment": (_V + "membership#Mentor",),
}
# The institution role a user's enrollments anywhere give (Canvas's ``user.roles``: "teacher"
# for instructor-type enrollments, TAs included, which is UNCONFIRMED; "student").
INSTITUTION_ROLES = {
    "TeacherEnrollment": _V + "institution/person#Instructor",
    "TaEnrollment": _V + "institution/person#Instructor",
    "StudentEnrollment": _V + "institution/person#Student",
}
ADMINISTRATOR = _V + "institution/person#Administrator"
# Enrollments that may change a course's content (``require_context_update_rights``).
EDITING_ENROLLMENTS = frozenset({"TeacherEnrollment", "TaEnrollment", "DesignerEnrollment"})
# Deep linking settings per placement (spec 3.4, Canvas's ``DEEP_LINKING_DETAILS``).
_LINK = {"accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe", "window"]}
DEEP_LINKING_DETAILS: dict[str, dict[str, Any]] = {
    "link_selection": {**_LINK, "accept_multiple": True, "auto_create": False},
    "assignment_selection": {**_LINK, "accept_multiple": False, "auto_create": False},
    "course_assignments_menu": {**_LINK, "accept_multiple": True, "auto_create": False},
    "module_menu_modal": {**_LINK, "accept_multiple": True, "auto_create": False},
    "editor_button": {
        "accept_types": ["link", "file", "html", "ltiResourceLink", "image"],
        "accept_presentation_document_targets": ["embed", "iframe", "window"],
        "accept_multiple": True,
        "auto_create": False,
    },
    "homework_submission": {
        "accept_types": ["file", "ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_multiple": False,
        "auto_create": False,
    },
}
ACCEPT_MEDIA_TYPES = "application/vnd.ims.lti.v1.ltilink"


def login_hint(secret_key: str, user: User) -> str:
    """Canvas's ``Lti::Asset.opaque_identifier_for(user)``: 40 hex, not the ``sub`` (spec 2.1);
    the same value as the id_token's ``lti11_legacy_user_id``."""
    return legacy_user_id(secret_key, user.id)


async def course_enrollments(session: AsyncSession, user_id: int, course_id: int) -> list[str]:
    rows = await session.scalars(
        select(Enrollment.type).where(
            Enrollment.user_id == user_id,
            Enrollment.course_id == course_id,
            Enrollment.workflow_state == "active",
        )
    )
    return sorted(set(rows))


async def roles(session: AsyncSession, user: User, course: Course) -> list[str]:
    """``all_roles("lti1_3")``: the course's membership roles, the institution roles of the
    user's enrollments anywhere, ``system/person#User``; unique and sorted (spec 3.2)."""
    found = {SYSTEM_USER}
    for kind in await course_enrollments(session, user.id, course.id):
        found.update(MEMBERSHIP_ROLES.get(kind, ()))
    everywhere = await session.scalars(
        select(Enrollment.type).where(Enrollment.user_id == user.id, Enrollment.workflow_state == "active")
    )
    found.update(INSTITUTION_ROLES[kind] for kind in set(everywhere) if kind in INSTITUTION_ROLES)
    if user.is_admin:
        found.add(ADMINISTRATOR)
    return sorted(found)


@dataclass
class Launch:
    """Everything one launch's claims are made of."""

    key: DeveloperKey
    tool: ExternalTool
    course: Course
    account: Account
    user: User
    public_url: str
    secret_key: str
    deployment_id: str
    placement: lti.Placement | None = None
    link: LtiResourceLink | None = None
    return_data: str | None = None  # the deep-linking return URL's signed ``data``
    locale: str = "en"
    extra_custom: dict[str, str] = field(default_factory=dict)

    @property
    def message_type(self) -> str:
        return self.placement.message_type if self.placement is not None else lti.RESOURCE_LINK


def _split_name(name: str) -> tuple[str, str]:
    return (name.rsplit(" ", 1)[0], name.rsplit(" ", 1)[1]) if " " in name else (name, "")


async def _variables(session: AsyncSession, launch: Launch, user_roles: list[str]) -> dict[str, str]:
    """The course-context variables Canvas expands (spec 3.2 "custom"), on top of those the LTI
    1.1 launch knows (``tools.expand_variable``)."""
    user, course = launch.user, launch.course
    given, family = _split_name(user.name)
    login = await session.scalar(select(Login).where(Login.user_id == user.id).order_by(Login.id).limit(1))
    found = {
        "$Canvas.course.id": str(course.id),
        "$Canvas.course.name": course.name,
        "$Canvas.course.workflowState": course.workflow_state,
        "$Context.id": course.lti_context_id,
        "$Context.title": course.name,
        "$Context.label": course.course_code,
        "$com.instructure.contextLabel": course.course_code,
        "$Canvas.user.globalId": str(user.global_id),
        "$User.id": str(user.id),
        "$Person.name.given": given,
        "$Person.name.family": family,
        "$Person.name.display": user.short_name,
        "$Canvas.membership.roles": ",".join(
            kind.removesuffix("Enrollment") for kind in await course_enrollments(session, user.id, course.id)
        ),
        "$Canvas.xuser.allRoles": ",".join(user_roles),
        "$Canvas.externalTool.url": launch.tool.url,
        "$Canvas.tool.id": str(launch.tool.id),
    }
    if user.email:
        found["$Person.email.primary"] = user.email
    if course.sis_course_id:
        found["$Canvas.course.sisSourceId"] = course.sis_course_id
    if login is not None and login.sis_user_id:
        found["$Canvas.user.sisid"] = login.sis_user_id
        found["$Person.sourcedId"] = login.sis_user_id
    if launch.link is not None:
        found["$ResourceLink.id"] = launch.link.uuid
        found["$ResourceLink.title"] = launch.link.title
    return found


async def custom_claim(session: AsyncSession, launch: Launch, user_roles: list[str]) -> dict[str, Any]:
    """The tool's and the placement's custom fields, ``$Variables`` expanded (a variable this
    server cannot expand is sent as written, as Canvas does), then the resource link's own."""
    fields = {**(launch.key.tool_configuration or {}).get("custom_fields", {})}
    if launch.placement is not None:
        fields.update(launch.placement.custom_fields)
    fields.update(launch.extra_custom)
    known = await _variables(session, launch, user_roles)
    login_id = await session.scalar(
        select(Login.unique_id).where(Login.user_id == launch.user.id).order_by(Login.id).limit(1)
    )
    legacy = LaunchContext(
        tool=launch.tool,
        user=launch.user,
        login_id=login_id,
        account=launch.account,
        public_url=launch.public_url,
        secret_key=launch.secret_key,
    )
    domain = urlsplit(launch.public_url).netloc
    custom: dict[str, Any] = {}
    for name, value in fields.items():
        key = name.removeprefix("custom_")
        custom[key] = known[value] if value in known else expand_variable(value, legacy, domain)
    if launch.link is not None:
        custom.update(launch.link.custom or {})
    return custom


async def claims(session: AsyncSession, launch: Launch) -> dict[str, Any]:
    """The unsigned id_token of ``launch``, ``iat``/``exp`` fixed now (spec 3.2 to 3.4). The
    ``nonce`` is a placeholder until the tool's authentication request names its own."""
    user, course, key, base = launch.user, launch.course, launch.key, launch.public_url
    now = clock.timestamp()
    user_roles = await roles(session, user, course)
    target = launch.placement.target_link_uri if launch.placement is not None else launch.tool.url
    if launch.link is not None and launch.link.url:
        target = launch.link.url
    body: dict[str, Any] = {
        "iss": base,
        "aud": key.client_id,
        "azp": key.client_id,
        "sub": lti_user_id(user.uuid),
        "exp": now + ID_TOKEN_LIFETIME,
        "iat": now,
        "nonce": str(uuid.uuid4()),
        P + "message_type": launch.message_type,
        P + "version": "1.3.0",
        P + "deployment_id": launch.deployment_id,
        P + "target_link_uri": target,
        P + "roles": user_roles,
        P + "context": {
            "id": course.lti_context_id,
            "label": course.course_code,
            "title": course.name,
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
        },
        P + "tool_platform": {
            "guid": f"{launch.account.uuid}:canvas-lms",
            "name": launch.account.name,
            "version": "cloud",
            "product_family_code": "canvas",
        },
        P + "launch_presentation": {
            "document_target": "iframe",
            "return_url": f"{base}/courses/{course.id}",
            "locale": launch.locale,
        },
        "locale": launch.locale,
        P + "custom": await custom_claim(session, launch, user_roles),
        P + "lti11_legacy_user_id": legacy_user_id(launch.secret_key, user.id),
    }
    level = launch.tool.privacy_level
    if level in ("public", "name_only"):
        given, family = _split_name(user.name)
        login = await session.scalar(
            select(Login).where(Login.user_id == user.id).order_by(Login.id).limit(1)
        )
        body.update(name=user.name, given_name=given, family_name=family)
        body[P + "lis"] = {
            "person_sourcedid": (login.sis_user_id if login is not None else None) or "$Person.sourcedId",
            "course_offering_sourcedid": course.sis_course_id or "$CourseSection.sourcedId",
        }
    if level in ("public", "email_only") and user.email:
        body["email"] = user.email
    if level == "public":
        body["picture"] = user.avatar_url or f"{base}/images/messages/avatar-50.png"
    if lti.NRPS_SCOPE in key.scopes:
        body[NRPS_CLAIM] = {
            "context_memberships_url": f"{base}/api/lti/courses/{course.id}/names_and_roles",
            "service_versions": ["2.0"],
        }
    ags_scopes = [scope for scope in key.scopes if scope in lti.AGS_SCOPES]
    if ags_scopes:
        body[AGS_CLAIM] = {"scope": ags_scopes, "lineitems": line_items_url(base, course.id)}
        if launch.link is not None and launch.message_type != lti.DEEP_LINKING:
            item = await link_line_item(
                session, course_id=course.id, developer_key_id=key.id, resource_link_id=launch.link.uuid
            )
            if item is not None:
                body[AGS_CLAIM]["lineitem"] = line_item_url(base, item)
    if launch.message_type == lti.DEEP_LINKING:
        assert launch.placement is not None
        details = DEEP_LINKING_DETAILS.get(launch.placement.name, DEEP_LINKING_DETAILS["link_selection"])
        return_url = f"{base}/courses/{course.id}/deep_linking_response?data={launch.return_data}"
        body[DL + "deep_linking_settings"] = {
            "deep_link_return_url": return_url,
            "accept_types": list(details["accept_types"]),
            "accept_presentation_document_targets": list(details["accept_presentation_document_targets"]),
            "accept_media_types": ACCEPT_MEDIA_TYPES,
            "accept_multiple": details["accept_multiple"],
            "auto_create": details["auto_create"],
        }
    else:
        link = launch.link
        body[P + "resource_link"] = {
            "id": link.uuid if link is not None else course.lti_context_id,
            "title": link.title if link is not None else course.name,
            "description": None,
        }
    # Claims whose value is null leave the top level; the placement claim stays, null or not.
    body = {name: value for name, value in body.items() if value is not None}
    body[PLACEMENT_CLAIM] = launch.placement.name if launch.placement is not None else None
    return body


__all__ = [
    "AGS_CLAIM",
    "DL",
    "EDITING_ENROLLMENTS",
    "NRPS_CLAIM",
    "Launch",
    "P",
    "claims",
    "course_enrollments",
    "login_hint",
    "roles",
]
