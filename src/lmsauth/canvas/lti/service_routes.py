"""The LTI Advantage services' routes (spec lti13.md 6, 7); ``canvas.routes`` mounts them."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.lti import names_roles
from lmsauth.canvas.lti.advantage import AdvantageServices, ScopeRule


def lti_service_routes(ctx: CanvasContext) -> list[BaseRoute]:
    services = AdvantageServices(ctx)
    nrps = names_roles.NamesAndRoles(ctx.settings.public_url)
    course = "/api/lti/courses/{course_id}"
    return [
        Route(
            course + "/names_and_roles",
            services.endpoint(nrps.course_index, ScopeRule(all_of=[names_roles.SCOPE])),
            methods=["GET"],
        ),
    ]
