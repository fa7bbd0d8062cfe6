"""Names and Role Provisioning Services 2.0 (spec lti13.md 6): ``GET
/api/lti/courses/:course_id/names_and_roles``, the course's people for a tool.

- Scope: ``contextmembership.readonly``; every other check is ``advantage``'s.
- Media type ``application/vnd.ims.lti-nrps.v2.membershipcontainer+json``, whatever ``Accept``.
- Members: the users with an active enrollment, one row each (several enrollments, one row),
  ``status`` always ``Active``, ``roles`` the membership roles of their enrollments
  (``LIS_V2_LTI_ADVANTAGE_ROLE_MAP``), ``user_id`` the user's ``lti_id`` (a launch's ``sub``)
  and ``lti11_legacy_user_id``; names, email and picture as the installed tool's privacy
  level allows (as a launch's claims do).
- ``role``: a full LIS role URI keeps the members holding it; any other value (``Learner``)
  keeps nobody, which is no error.
- ``rlid``: the course's own context id filters nothing; a resource link of this tool in the
  course (one its line items name: a deep link's assignment) adds each member's ``message``
  (every active student is assigned every assignment here, so none is left out); anything
  else is refused (400, Canvas's status UNCONFIRMED).
- Paging: ``limit`` (default and at most 50) wins over ``per_page``; Canvas's ``Link`` header,
  ``limit`` left out of its URLs and the other parameters sorted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.courses.models import Enrollment
from lmsauth.canvas.errors import lti_service_error
from lmsauth.canvas.lti.advantage import ServiceCall
from lmsauth.canvas.lti.line_items import link_line_item
from lmsauth.canvas.lti.user_ids import legacy_user_id, lti_user_id
from lmsauth.canvas.models import Login, User
from lmsauth.canvas.pagination import LTI_SERVICES, page_request, paginate
from lmsauth.canvas.people import USER_IS_USABLE
from lmsauth.core.web import ORJSONResponse, Params

SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_PAGE_SIZE = 50
_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTRUCTOR = _MEMBERSHIP + "#Instructor"
LEARNER = _MEMBERSHIP + "#Learner"
TEACHING_ASSISTANT = _MEMBERSHIP + "/Instructor#TeachingAssistant"
CONTENT_DEVELOPER = _MEMBERSHIP + "#ContentDeveloper"
MENTOR = _MEMBERSHIP + "#Mentor"
# Canvas's LIS_V2_LTI_ADVANTAGE_ROLE_MAP: an enrollment type's membership roles.
MEMBERSHIP_ROLES: dict[str, tuple[str, ...]] = {
    "TeacherEnrollment": (INSTRUCTOR,),
    "TaEnrollment": (TEACHING_ASSISTANT, INSTRUCTOR),
    "StudentEnrollment": (LEARNER,),
    "StudentViewEnrollment": (LEARNER,),
    "DesignerEnrollment": (CONTENT_DEVELOPER,),
    "ObserverEnrollment": (MENTOR,),
}
RLID_REFUSED = "Tool does not have access to rlid or rlid does not exist"


def enrollment_types_for(role: str) -> set[str]:
    """The inverted role map: the enrollment types that give ``role`` (a full URI)."""
    return {kind for kind, roles in MEMBERSHIP_ROLES.items() if role in roles}


def given_and_family(user: User) -> tuple[str, str]:
    """Canvas's ``first_name``/``last_name``: from the sortable name, "Last, First"."""
    last, comma, first = user.sortable_name.partition(",")
    if comma:
        return first.strip(), last.strip()
    parts = user.name.split()
    return (" ".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (user.name, "")


def member(
    user: User, roles: list[str], privacy: str, sis_id: str | None, public_url: str, secret_key: str
) -> dict[str, Any]:
    row: dict[str, Any] = {"status": "Active"}
    if privacy in ("public", "name_only"):
        given, family = given_and_family(user)
        row.update(name=user.name, given_name=given, family_name=family)
        if sis_id:
            row["lis_person_sourcedid"] = sis_id
    if privacy == "public":
        row["picture"] = user.avatar_url or public_url + "/images/messages/avatar-50.png"
    if privacy in ("public", "email_only") and user.email:
        row["email"] = user.email
    row["user_id"] = lti_user_id(user.uuid)
    row["lti11_legacy_user_id"] = legacy_user_id(secret_key, user.id)
    row["roles"] = roles
    return row


def launch_message(user: User) -> dict[str, Any]:
    """The ``message`` a member row carries when ``rlid`` names a resource link: what a launch
    of it would say of the member (Canvas's serializer, without custom fields: lmsauth keeps
    none on resource links)."""
    return {
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "locale": user.locale or "en",
        "https://purl.imsglobal.org/spec/lti/claim/custom": {},
        "https://www.instructure.com/canvas_user_id": user.id,
    }


class NamesAndRoles:
    def __init__(self, public_url: str, secret_key: str) -> None:
        self.public_url = public_url
        self.secret_key = secret_key

    async def course_index(self, request: Request, call: ServiceCall) -> Response:
        params = Params(request.query_params.multi_items())
        asked = page_request(
            params, default_per_page=MAX_PAGE_SIZE, max_per_page=MAX_PAGE_SIZE, size_override="limit"
        )
        rlid = params.get("rlid")
        with_message = False
        if rlid is not None and rlid != call.course.lti_context_id:
            if not await self._tool_resource_link(call, rlid):
                raise lti_service_error(400, RLID_REFUSED)
            with_message = True
        role = params.get("role")
        rows = (
            await call.session.execute(
                select(User, Enrollment.type)
                .join(Enrollment, Enrollment.user_id == User.id)
                .where(
                    Enrollment.course_id == call.course.id,
                    Enrollment.workflow_state == "active",
                    USER_IS_USABLE,
                )
                .order_by(User.id, Enrollment.id)
            )
        ).all()
        people: dict[int, tuple[User, list[str]]] = {}
        for user, kind in rows:
            _, roles = people.setdefault(user.id, (user, []))
            roles.extend(r for r in MEMBERSHIP_ROLES.get(kind, ()) if r not in roles)
        if role is not None:
            people = {uid: entry for uid, entry in people.items() if role in entry[1]}
        chosen = list(people.values())[asked.offset : asked.offset + asked.per_page]
        privacy = call.tool.privacy_level
        sis_ids = await self._sis_ids(call, [user.id for user, _ in chosen])
        members = [
            member(user, roles, privacy, sis_ids.get(user.id), self.public_url, self.secret_key)
            for user, roles in chosen
        ]
        if with_message:
            for row, (user, _) in zip(members, chosen, strict=True):
                row["message"] = [launch_message(user)]
        body = {
            "id": str(request.url),
            "context": {
                "id": call.course.lti_context_id,
                "label": call.course.course_code,
                "title": call.course.name,
            },
            "members": members,
        }
        response = ORJSONResponse(body, media_type=MEDIA_TYPE)
        return paginate(response, request, self.public_url, asked, len(people), LTI_SERVICES)

    @staticmethod
    async def _tool_resource_link(call: ServiceCall, rlid: str) -> bool:
        """Whether ``rlid`` is a resource link of this key's in the course: one its line items
        (a deep link's assignment) name."""
        item = await link_line_item(
            call.session, course_id=call.course.id, developer_key_id=call.key.id, resource_link_id=rlid
        )
        return item is not None

    @staticmethod
    async def _sis_ids(call: ServiceCall, user_ids: list[int]) -> dict[int, str]:
        """``lis_person_sourcedid``: the SIS id of each user's login, where one has any."""
        if not user_ids:
            return {}
        found = await call.session.execute(
            select(Login.user_id, Login.sis_user_id)
            .where(Login.user_id.in_(user_ids), Login.sis_user_id.is_not(None))
            .order_by(Login.id)
        )
        ids: dict[int, str] = {}
        for user_id, sis in found.all():
            if sis:
                ids.setdefault(user_id, sis)
        return ids
