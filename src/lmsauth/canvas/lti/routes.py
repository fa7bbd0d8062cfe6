"""The LTI 1.3 routes that ``canvas.routes`` mounts."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.lti.course_tools import CourseToolsPage
from lmsauth.canvas.lti.deep_linking import DeepLinkingResponses
from lmsauth.canvas.lti.launch import LtiLaunch


def lti_routes(ctx: CanvasContext) -> list[BaseRoute]:
    launch = LtiLaunch(ctx)
    deep_linking = DeepLinkingResponses(launch)
    tools = CourseToolsPage(launch)
    return [
        Route("/api/lti/security/jwks", launch.jwks, methods=["GET"]),
        Route("/api/lti/authorize_redirect", launch.authorize_redirect, methods=["GET", "POST"]),
        Route("/api/lti/authorize", launch.authorize, methods=["GET"]),
        Route("/courses/{course_id}/external_tools", tools.index, methods=["GET"]),
        Route("/courses/{course_id}/external_tools/{tool_id}", launch.start, methods=["GET"]),
        Route("/courses/{course_id}/deep_linking_response", deep_linking.receive, methods=["POST"]),
    ]
