"""Assignment and Grade Services: line items (spec lti13.md 7.1, 7.2), Canvas's
``Lti::IMS::LineItemsController``.

- ``GET .../line_items``: a bare JSON array (``lineitemcontainer+json``) of this key's line
  items in the course, Canvas's ``Link`` paging (default 10, ``limit`` wins over
  ``per_page``), filters ``tag``, ``resource_id``, ``resource_link_id``, and
  ``include[]=launch_url``.
- ``POST``: ``label`` and a numeric ``scoreMaximum`` required; without ``resourceLinkId`` a new
  assignment is made for the line item (named ``label``, worth ``scoreMaximum``); with one, the
  line item joins the assignment of that resource link (404 when this key has none there).
  201 with the line item (``lineitem+json``).
- ``GET``/``PUT``/``DELETE .../line_items/:id``: another key's line item is 412
  ``Tool does not have permission to view line_item``; one outside the course 404. ``PUT``
  changes the line item and, for its assignment's own (coupled) line item, the assignment's
  name, points, unlock and due dates. ``DELETE`` answers 204, or 401 with no body for the
  assignment's coupled line item; a tool's own placeholder assignment goes with its last line
  item.

``create_from_deep_link`` makes the assignment and line item a deep-linking response's
``lineItem`` asks for (spec 8).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.courses.gradebook import Assignment, LineItem
from lmsauth.canvas.errors import lti_service_error, not_found
from lmsauth.canvas.lti.advantage import EmptyAnswer, ServiceCall, read_json
from lmsauth.canvas.pagination import LTI_SERVICES, page_request, paginate
from lmsauth.core.db import row_id
from lmsauth.core.errors import WireError
from lmsauth.core.web import ORJSONResponse, Params

SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
LINEITEM = SCOPE + "lineitem"
LINEITEM_READONLY = SCOPE + "lineitem.readonly"
CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
SUBMISSION_TYPE_EXTENSION = "https://canvas.instructure.com/lti/submission_type"
LAUNCH_URL_EXTENSION = "https://canvas.instructure.com/lti/launch_url"
NO_PERMISSION = "Tool does not have permission to view line_item"


def line_items_url(public_url: str, course_id: int) -> str:
    return f"{public_url}/api/lti/courses/{course_id}/line_items"


def line_item_url(public_url: str, item: LineItem) -> str:
    return f"{line_items_url(public_url, item.course_id)}/{item.id}"


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, name: str) -> datetime | None:
    """An ISO 8601 date-time (a naive one is UTC); 400 when it is not one."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise WireError(400, {"error": f"Invalid {name}: {value}"}) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def number(value: Any) -> float | None:
    """A JSON number, or a string holding one (Rails' numericality); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def serialize(item: LineItem, public_url: str, launch_url: str | None = None) -> dict[str, Any]:
    """``Lti::IMS::LineItemsSerializer``, nulls left out."""
    body: dict[str, Any] = {
        "id": line_item_url(public_url, item),
        "scoreMaximum": item.score_maximum,
        "label": item.label,
        "resourceId": item.resource_id,
        "tag": item.tag,
        "resourceLinkId": item.resource_link_id,
        "startDateTime": iso(item.start_date_time),
        "endDateTime": iso(item.end_date_time),
        SUBMISSION_TYPE_EXTENSION: item.extensions.get(SUBMISSION_TYPE_EXTENSION),
        LAUNCH_URL_EXTENSION: launch_url,
    }
    return {name: value for name, value in body.items() if value is not None}


def validation_failed(*problems: str) -> WireError:
    """A line item or score the models refuse (``ActiveRecord::RecordInvalid``): 422."""
    return lti_service_error(422, "Validation failed: " + ", ".join(problems))


async def create_line_item(
    session: AsyncSession,
    *,
    course_id: int,
    developer_key_id: int,
    label: str,
    score_maximum: float,
    resource_id: str | None = None,
    tag: str | None = None,
    resource_link_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    extensions: dict[str, Any] | None = None,
    assignment: Assignment | None = None,
    assignment_state: str = "published",
    coupled: bool = False,
) -> LineItem:
    """A line item for ``assignment``, or for a new assignment named ``label`` worth
    ``score_maximum`` (a tool's placeholder, or a deep link's)."""
    submission_type = ((extensions or {}).get(SUBMISSION_TYPE_EXTENSION) or {}).get("type")
    if assignment is None:
        assignment = Assignment(
            course_id=course_id,
            name=label,
            points_possible=score_maximum,
            submission_types="none" if submission_type == "none" else "external_tool",
            workflow_state=assignment_state,
            unlock_at=start,
            due_at=end,
        )
        session.add(assignment)
        await session.flush()
    item = LineItem(
        assignment_id=assignment.id,
        course_id=course_id,
        developer_key_id=developer_key_id,
        label=label,
        score_maximum=score_maximum,
        resource_id=resource_id,
        tag=tag,
        resource_link_id=resource_link_id,
        start_date_time=start,
        end_date_time=end,
        extensions=dict(extensions or {}),
        coupled=coupled,
    )
    session.add(item)
    await session.flush()
    return item


async def create_from_deep_link(
    session: AsyncSession,
    *,
    course_id: int,
    developer_key_id: int,
    line_item: dict[str, Any],
    resource_link_id: str,
    title: str | None = None,
) -> LineItem:
    """The unpublished assignment and its (coupled) line item that a deep-linking response's
    ``ltiResourceLink`` item with a ``lineItem`` makes (spec lti13.md 8): worth
    ``lineItem.scoreMaximum`` (required: ``ValueError("lineItem.scoreMaximum is a required
    field")``, Canvas's item error), named ``lineItem.label``, else the item's ``title``, with
    its ``resourceId`` and ``tag``, for the resource link ``resource_link_id``."""
    maximum = number(line_item.get("scoreMaximum"))
    if maximum is None:
        raise ValueError("lineItem.scoreMaximum is a required field")
    label = line_item.get("label") or title or "Untitled"
    return await create_line_item(
        session,
        course_id=course_id,
        developer_key_id=developer_key_id,
        label=str(label)[:255],
        score_maximum=maximum,
        resource_id=_text(line_item.get("resourceId")),
        tag=_text(line_item.get("tag")),
        resource_link_id=resource_link_id,
        assignment_state="unpublished",
        coupled=True,
    )


async def link_line_item(
    session: AsyncSession, *, course_id: int, developer_key_id: int, resource_link_id: str
) -> LineItem | None:
    """The first line item of key ``developer_key_id`` for resource link ``resource_link_id``
    in the course whose assignment is not deleted: the launch's AGS ``lineitem`` (spec
    lti13.md 3.2), and the proof that ``rlid`` names one of the tool's links (NRPS)."""
    found: LineItem | None = await session.scalar(
        select(LineItem)
        .join(Assignment, Assignment.id == LineItem.assignment_id)
        .where(
            LineItem.course_id == course_id,
            LineItem.developer_key_id == developer_key_id,
            LineItem.resource_link_id == resource_link_id,
            Assignment.workflow_state != "deleted",
        )
        .order_by(LineItem.id)
        .limit(1)
    )
    return found


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:255]


async def find_line_item(call: ServiceCall, raw_id: str) -> LineItem:
    """The course's line item ``raw_id`` that this key may use: 404 outside the course, 412
    another key's, 404 with no body when its assignment is deleted."""
    item_id = row_id(int(raw_id)) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 19 else None
    item = await call.session.get(LineItem, item_id) if item_id is not None else None
    if item is None or item.course_id != call.course.id:
        raise not_found()
    if item.developer_key_id != call.key.id:
        raise lti_service_error(412, NO_PERMISSION)
    assignment = await call.session.get(Assignment, item.assignment_id)
    if assignment is None or assignment.workflow_state == "deleted":
        raise EmptyAnswer(404)
    return item


class LineItems:
    def __init__(self, public_url: str) -> None:
        self.public_url = public_url

    async def index(self, request: Request, call: ServiceCall) -> Response:
        params = Params(request.query_params.multi_items())
        asked = page_request(params, size_override="limit")
        query = (
            select(LineItem)
            .join(Assignment, Assignment.id == LineItem.assignment_id)
            .where(
                LineItem.course_id == call.course.id,
                LineItem.developer_key_id == call.key.id,
                Assignment.workflow_state != "deleted",
            )
        )
        for name, column in (
            ("tag", LineItem.tag),
            ("resource_id", LineItem.resource_id),
            ("resource_link_id", LineItem.resource_link_id),
        ):
            value = params.get(name)
            if value is not None:
                query = query.where(column == value)
        total = await call.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        items = await call.session.scalars(
            query.order_by(LineItem.id).offset(asked.offset).limit(asked.per_page)
        )
        launch = call.tool.url if "launch_url" in _includes(params) else None
        body = [serialize(item, self.public_url, launch) for item in items]
        response = ORJSONResponse(body, media_type=CONTAINER_TYPE)
        return paginate(response, request, self.public_url, asked, total, LTI_SERVICES)

    async def create(self, request: Request, call: ServiceCall) -> Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            raise WireError(400, {"error": "The line item must be a JSON object"})
        label, maximum = data.get("label"), number(data.get("scoreMaximum"))
        problems = []
        if not isinstance(label, str) or not label.strip():
            problems.append("Label can't be blank")
        if maximum is None:
            problems.append("Score maximum is not a number")
        elif maximum < 0:
            problems.append("Score maximum must be greater than or equal to 0")
        if problems:
            raise validation_failed(*problems)
        assert isinstance(label, str) and maximum is not None
        assignment = None
        link = data.get("resourceLinkId")
        if link is not None:
            if not isinstance(link, str) or not link:
                raise EmptyAnswer(412)
            assignment = await self._linked_assignment(call, link)
        extension = data.get(SUBMISSION_TYPE_EXTENSION)
        extensions = {}
        if isinstance(extension, dict) and extension.get("type") in ("none", "external_tool"):
            extensions[SUBMISSION_TYPE_EXTENSION] = {
                key: str(value) for key, value in extension.items() if key in ("type", "external_tool_url")
            }
        item = await create_line_item(
            call.session,
            course_id=call.course.id,
            developer_key_id=call.key.id,
            label=label[:255],
            score_maximum=maximum,
            resource_id=_text(data.get("resourceId")),
            tag=_text(data.get("tag")),
            resource_link_id=link,
            start=parse_time(data.get("startDateTime"), "startDateTime"),
            end=parse_time(data.get("endDateTime"), "endDateTime"),
            extensions=extensions,
            assignment=assignment,
        )
        return ORJSONResponse(serialize(item, self.public_url), status_code=201, media_type=LINEITEM_TYPE)

    async def _linked_assignment(self, call: ServiceCall, link: str) -> Assignment:
        """The assignment behind this key's resource link ``link`` in the course, else 404."""
        found = await call.session.scalar(
            select(Assignment)
            .join(LineItem, LineItem.assignment_id == Assignment.id)
            .where(
                LineItem.course_id == call.course.id,
                LineItem.developer_key_id == call.key.id,
                LineItem.resource_link_id == link,
                Assignment.workflow_state != "deleted",
            )
            .order_by(LineItem.id)
            .limit(1)
        )
        if found is None:
            raise not_found()
        return found

    async def show(self, request: Request, call: ServiceCall) -> Response:
        item = await find_line_item(call, request.path_params["line_item_id"])
        launch = (
            call.tool.url if "launch_url" in _includes(Params(request.query_params.multi_items())) else None
        )
        return ORJSONResponse(serialize(item, self.public_url, launch), media_type=LINEITEM_TYPE)

    async def update(self, request: Request, call: ServiceCall) -> Response:
        item = await find_line_item(call, request.path_params["line_item_id"])
        data = await read_json(request)
        if not isinstance(data, dict):
            raise WireError(400, {"error": "The line item must be a JSON object"})
        if "label" in data:
            if not isinstance(data["label"], str) or not data["label"].strip():
                raise validation_failed("Label can't be blank")
            item.label = data["label"][:255]
        if "scoreMaximum" in data:
            maximum = number(data["scoreMaximum"])
            if maximum is None:
                raise validation_failed("Score maximum is not a number")
            item.score_maximum = maximum
        for name, attribute in (("resourceId", "resource_id"), ("tag", "tag")):
            if name in data:
                setattr(item, attribute, _text(data[name]))
        if "startDateTime" in data:
            item.start_date_time = parse_time(data["startDateTime"], "startDateTime")
        if "endDateTime" in data:
            item.end_date_time = parse_time(data["endDateTime"], "endDateTime")
        if item.coupled:
            assignment = await call.session.get(Assignment, item.assignment_id)
            assert assignment is not None
            assignment.name = item.label
            assignment.points_possible = item.score_maximum
            assignment.unlock_at = item.start_date_time
            assignment.due_at = item.end_date_time
        await call.session.flush()
        return ORJSONResponse(serialize(item, self.public_url), media_type=LINEITEM_TYPE)

    async def destroy(self, request: Request, call: ServiceCall) -> Response:
        item = await find_line_item(call, request.path_params["line_item_id"])
        if item.coupled:
            return Response(status_code=401)
        assignment_id = item.assignment_id
        await call.session.delete(item)
        await call.session.flush()
        others = await call.session.scalar(
            select(func.count()).select_from(LineItem).where(LineItem.assignment_id == assignment_id)
        )
        if not others:
            assignment = await call.session.get(Assignment, assignment_id)
            if assignment is not None:
                assignment.workflow_state = "deleted"
        return Response(status_code=204)


def _includes(params: Params) -> list[str]:
    return params.get_all("include[]") + params.get_all("include")
