"""A course's LTI tools and where each can be opened: for the course page's navigation and
tool list (``lti_course_tools.html``, included with ``lti_tools``), and for
``GET /courses/:course_id/external_tools``.

Each tool shows its placements (course navigation launches the tool; a selection placement
opens deep linking, ``?launch_type=<placement>``) and the resource links deep linking made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas import signed_in
from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.keys import lti
from lmsauth.canvas.lti import launch as lti_launch
from lmsauth.canvas.lti.models import LtiResourceLink
from lmsauth.canvas.models import DeveloperKey
from lmsauth.canvas.tokens import key_usable, root_account_id
from lmsauth.canvas.tool_models import ExternalTool


@dataclass(frozen=True, slots=True)
class ToolLink:
    text: str
    url: str
    placement: str | None  # None: a resource link made by deep linking


@dataclass
class CourseTool:
    tool: ExternalTool
    deployment_id: str
    placements: list[ToolLink] = field(default_factory=list)
    links: list[ToolLink] = field(default_factory=list)


async def lti_tools_for_course(session: AsyncSession, course: Course) -> list[CourseTool]:
    """The course's launchable LTI 1.3 tools (installed in it or its account, with a usable
    key), each with its placements' and its resource links' URLs."""
    root = await root_account_id(session)
    rows = await session.execute(
        select(ExternalTool, DeveloperKey)
        .join(DeveloperKey, DeveloperKey.id == ExternalTool.developer_key_id)
        .where(
            ExternalTool.lti_version == "1.3",
            ExternalTool.workflow_state == "active",
            lti_launch.installed_in(course),
        )
        .order_by(ExternalTool.id)
    )
    found = []
    for tool, key in rows.all():
        if not key_usable(key, root):
            continue
        base = f"/courses/{course.id}/external_tools/{tool.id}"
        entry = CourseTool(tool, await lti.tool_deployment_id(session, tool))
        for placement in lti.placements(key.tool_configuration or {}):
            url = base if placement.name == "course_navigation" else f"{base}?launch_type={placement.name}"
            entry.placements.append(ToolLink(placement.text, url, placement.name))
        links = await session.scalars(
            select(LtiResourceLink)
            .where(
                LtiResourceLink.course_id == course.id,
                LtiResourceLink.external_tool_id == tool.id,
                LtiResourceLink.workflow_state == "active",
            )
            .order_by(LtiResourceLink.id)
        )
        entry.links = [ToolLink(link.title, f"{base}?resource_link_id={link.uuid}", None) for link in links]
        found.append(entry)
    return found


class CourseToolsPage:
    def __init__(self, launch: lti_launch.LtiLaunch) -> None:
        self.launch = launch
        self.ctx = launch.ctx  # Canvas's context, with the LTI pages

    async def index(self, request: Request) -> Response:
        """GET /courses/:course_id/external_tools: the course's LTI tools, for its members."""
        async with self.ctx.db.session(write=True) as session:
            member = await self.launch.course_member(session, request)
            if isinstance(member, Response):
                return member
            who, course = member
            tools = await lti_tools_for_course(session, course)
            return signed_in.page(
                self.ctx,
                request,
                who,
                "lti_course_tools_page.html",
                section="tools",
                course=course,
                lti_tools=tools,
            )


__all__ = ["CourseTool", "CourseToolsPage", "ToolLink", "lti_tools_for_course"]
