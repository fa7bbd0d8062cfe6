"""The LTI Advantage services' routes (spec lti13.md 6, 7); ``canvas.routes`` mounts them."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.lti import line_items, names_roles, scores
from lmsauth.canvas.lti.advantage import AdvantageServices, ScopeRule

READ_LINE_ITEMS = ScopeRule(any_of=[line_items.LINEITEM, line_items.LINEITEM_READONLY])
WRITE_LINE_ITEMS = ScopeRule(all_of=[line_items.LINEITEM])


def lti_service_routes(ctx: CanvasContext) -> list[BaseRoute]:
    services = AdvantageServices(ctx)
    public_url = ctx.settings.public_url
    nrps = names_roles.NamesAndRoles(public_url, ctx.settings.resolved_secret_key)
    items = line_items.LineItems(public_url)
    score = scores.Scores(public_url)
    results = scores.Results(public_url)
    course = "/api/lti/courses/{course_id}"
    item = course + "/line_items/{line_item_id}"
    serve = services.endpoint
    return [
        Route(
            course + "/names_and_roles",
            serve(nrps.course_index, ScopeRule(all_of=[names_roles.SCOPE])),
            methods=["GET"],
        ),
        Route(course + "/line_items", serve(items.index, READ_LINE_ITEMS), methods=["GET"]),
        Route(course + "/line_items", serve(items.create, WRITE_LINE_ITEMS, write=True), methods=["POST"]),
        Route(item, serve(items.show, READ_LINE_ITEMS), methods=["GET"]),
        Route(item, serve(items.update, WRITE_LINE_ITEMS, write=True), methods=["PUT"]),
        Route(item, serve(items.destroy, WRITE_LINE_ITEMS, write=True), methods=["DELETE"]),
        Route(
            item + "/scores",
            serve(score.create, ScopeRule(all_of=[scores.SCORE]), write=True),
            methods=["POST"],
        ),
        Route(
            item + "/results",
            serve(results.index, ScopeRule(all_of=[scores.RESULT_READONLY])),
            methods=["GET"],
        ),
        Route(
            item + "/results/{result_id}",
            serve(results.show, ScopeRule(all_of=[scores.RESULT_READONLY])),
            methods=["GET"],
        ),
    ]
