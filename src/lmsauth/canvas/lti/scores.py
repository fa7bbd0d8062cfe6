"""Assignment and Grade Services: scores and results (spec lti13.md 7.3, 7.4), Canvas's
``Lti::IMS::ScoresController`` and ``ResultsController``.

``POST .../line_items/:id/scores`` (scope ``score``): ``userId``, ``activityProgress``,
``gradingProgress`` and ``timestamp`` required (400 ``<field> is missing``, the REST API's
shape: Rails' ``ParameterMissing``); the user a student of the course (an ``lti_id`` or a
Canvas user id; else 422); the timestamp ISO 8601 and not older than the last result's update
(400). ``FullyGraded`` or ``PendingManual`` with a ``scoreGiven`` grades the submission:
``scoreGiven * lineItem.scoreMaximum / scoreMaximum`` points (a pass/fail assignment:
``complete`` when above 0); any other score clears the grade, unless the Canvas extension's
``preserve_score``. The result keeps what the tool sent. The answer is ``{"resultUrl"}``.

``GET .../line_items/:id/results`` (scope ``result.readonly``): a bare JSON array
(``resultcontainer+json``), ``user_id`` narrowing it to one student (anyone else: ``[]``),
with Canvas's ``Link`` paging; ``GET .../results/:id`` one result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.courses.gradebook import Assignment, LineItem, Result, Submission
from lmsauth.canvas.courses.models import Enrollment
from lmsauth.canvas.errors import lti_service_error, not_found
from lmsauth.canvas.lti.advantage import ServiceCall, read_json
from lmsauth.canvas.lti.line_items import SCOPE, find_line_item, iso, line_item_url, number
from lmsauth.canvas.lti.user_ids import lti_user_id
from lmsauth.canvas.models import User, local_id
from lmsauth.canvas.pagination import LTI_SERVICES, page_request, paginate
from lmsauth.canvas.people import USER_IS_USABLE
from lmsauth.core import clock
from lmsauth.core.db import row_id
from lmsauth.core.errors import WireError
from lmsauth.core.web import ORJSONResponse, Params

SCORE = SCOPE + "score"
RESULT_READONLY = SCOPE + "result.readonly"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
RESULTS_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"
RESULT_TYPE = "application/vnd.ims.lis.v2.result+json"
SUBMISSION_EXTENSION = "https://canvas.instructure.com/lti/submission"
REQUIRED = ("userId", "activityProgress", "gradingProgress", "timestamp")
ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
GRADED = ("FullyGraded", "PendingManual")
SUBMISSION_TYPES = (
    "none",
    "basic_lti_launch",
    "online_text_entry",
    "online_url",
    "external_tool",
    "online_upload",
)
NOT_A_STUDENT = "User not found in course or is not a student"


def points(value: float) -> str:
    """A grade as Canvas writes points: ``9``, ``8.5``."""
    rounded = round(value, 2)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


async def course_student(call: ServiceCall, reference: Any) -> User | None:
    """The student ``reference`` names (an ``lti_id``, or a Canvas user id, local or global)
    among the course's active student enrollments."""
    students = (
        await call.session.scalars(
            select(User)
            .join(Enrollment, Enrollment.user_id == User.id)
            .where(
                Enrollment.course_id == call.course.id,
                Enrollment.type.in_(("StudentEnrollment", "StudentViewEnrollment")),
                Enrollment.workflow_state == "active",
                USER_IS_USABLE,
            )
        )
    ).all()
    text = str(reference) if isinstance(reference, str | int) and not isinstance(reference, bool) else ""
    if text.isascii() and text.isdigit() and len(text) < 19:
        wanted = row_id(local_id(int(text)))
        return next((user for user in students if user.id == wanted), None)
    return next((user for user in students if lti_user_id(user.uuid) == text), None)


def moment_of(raw: str, what: str) -> datetime:
    """An ISO 8601 date-time (a naive one is UTC); 400 ``Provided <what> of X not a valid
    timestamp`` otherwise."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise lti_service_error(400, f"Provided {what} of {raw} not a valid timestamp") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def serialize_result(result: Result, user: User, item_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{item_url}/results/{result.id}",
        "scoreOf": item_url,
        "userId": lti_user_id(user.uuid),
        "resultScore": result.result_score,
        "resultMaximum": result.result_maximum,
        "comment": result.comment,
    }
    return {name: value for name, value in body.items() if value is not None}


class Scores:
    def __init__(self, public_url: str) -> None:
        self.public_url = public_url

    async def create(self, request: Request, call: ServiceCall) -> Response:
        item = await find_line_item(call, request.path_params["line_item_id"])
        data = await read_json(request)
        if not isinstance(data, dict):
            raise WireError(400, {"error": "The score must be a JSON object"})
        for name in REQUIRED:
            if data.get(name) in (None, ""):
                raise WireError(400, {"errors": [{"message": f"{name} is missing"}]})
        user = await course_student(call, data["userId"])
        if user is None:
            raise lti_service_error(422, NOT_A_STUDENT)
        raw_timestamp = str(data["timestamp"])
        timestamp = moment_of(raw_timestamp, "timestamp")
        result = await call.session.scalar(
            select(Result).where(Result.line_item_id == item.id, Result.user_id == user.id)
        )
        if result is not None and timestamp < result.updated_at:
            raise lti_service_error(
                400,
                f"Provided timestamp of {raw_timestamp} before last updated timestamp of "
                f"{iso(result.updated_at)}",
            )
        given, maximum = self._scores(data, item)
        extension = data.get(SUBMISSION_EXTENSION)
        extension = extension if isinstance(extension, dict) else {}
        submission_type = extension.get("submission_type") or "external_tool"
        if submission_type not in SUBMISSION_TYPES:
            raise lti_service_error(422, f"Submission type {submission_type} is not a valid submission type")
        content_items = extension.get("content_items")
        if submission_type == "online_upload" and not content_items:
            raise lti_service_error(
                422, "Content items must be provided with submission type 'online_upload'"
            )
        submitted_at = self._submitted_at(data, extension)

        assignment = await call.session.get(Assignment, item.assignment_id)
        assert assignment is not None
        submission = await call.session.scalar(
            select(Submission).where(Submission.assignment_id == assignment.id, Submission.user_id == user.id)
        )
        if submission is None:
            submission = Submission(assignment_id=assignment.id, user_id=user.id)
            call.session.add(submission)
        activity = data["activityProgress"]
        if activity in ("Submitted", "Completed") or extension.get("new_submission"):
            submission.submitted_at = submitted_at or clock.now()
            submission.submission_type = submission_type
            submission.workflow_state = "submitted"
        if data["gradingProgress"] in GRADED and given is not None:
            earned = given * item.score_maximum / maximum if maximum else given
            if assignment.grading_type == "pass_fail":
                submission.grade = "complete" if earned > 0 else "incomplete"
                submission.score = (assignment.points_possible or 0.0) if earned > 0 else 0.0
            else:
                submission.score, submission.grade = earned, points(earned)
            submission.graded_at = clock.now()
            submission.workflow_state = "graded"
        elif not extension.get("preserve_score"):
            submission.score = submission.grade = submission.graded_at = None
            if submission.workflow_state == "graded":
                submission.workflow_state = "submitted" if submission.submitted_at else "unsubmitted"
        await call.session.flush()
        if result is None:
            result = Result(line_item_id=item.id, user_id=user.id)
            call.session.add(result)
        result.submission_id = submission.id
        result.result_score, result.result_maximum = given, maximum
        comment = data.get("comment")
        result.comment = None if comment is None else str(comment)
        result.activity_progress, result.grading_progress = activity, data["gradingProgress"]
        result.updated_at = clock.now()
        await call.session.flush()
        body: dict[str, Any] = {"resultUrl": f"{line_item_url(self.public_url, item)}/results/{result.id}"}
        if content_items:
            body[SUBMISSION_EXTENSION] = {"content_items": content_items}
        return ORJSONResponse(body, media_type=SCORE_TYPE)

    @staticmethod
    def _scores(data: dict[str, Any], item: LineItem) -> tuple[float | None, float | None]:
        """``scoreGiven`` and ``scoreMaximum``, validated as ``Lti::Result`` does (422)."""
        for name, allowed in (("activityProgress", ACTIVITY_PROGRESS), ("gradingProgress", GRADING_PROGRESS)):
            if data[name] not in allowed:
                raise lti_service_error(422, f"{name[0].upper()}{name[1:]} is not included in the list")
        given = maximum = None
        if data.get("scoreGiven") is not None:
            given = number(data["scoreGiven"])
            if given is None:
                raise lti_service_error(422, "ScoreGiven is not a number")
            if given < 0:
                raise lti_service_error(422, "ScoreGiven must be greater than or equal to 0")
            if data.get("scoreMaximum") is None:
                raise lti_service_error(422, "ScoreMaximum not supplied when ScoreGiven present.")
        if data.get("scoreMaximum") is not None:
            maximum = number(data["scoreMaximum"])
            if maximum is None:
                raise lti_service_error(422, "ScoreMaximum is not a number")
            if maximum < 0:
                raise lti_service_error(422, "ScoreMaximum must be greater than or equal to 0")
            if maximum == 0 and item.score_maximum != 0:
                raise lti_service_error(422, "cannot be zero if line item's maximum is not zero")
        return given, maximum

    @staticmethod
    def _submitted_at(data: dict[str, Any], extension: dict[str, Any]) -> datetime | None:
        """``submission.submittedAt`` (or the extension's ``submitted_at``): at most a minute
        ahead of now (400)."""
        nested = data.get("submission")
        raw = (nested.get("submittedAt") if isinstance(nested, dict) else None) or extension.get(
            "submitted_at"
        )
        if raw is None:
            return None
        moment = moment_of(str(raw), "submitted_at timestamp")
        if moment > clock.now() + timedelta(minutes=1):
            raise lti_service_error(400, f"Provided submitted_at timestamp of {raw} in the future")
        return moment


class Results:
    def __init__(self, public_url: str) -> None:
        self.public_url = public_url

    async def index(self, request: Request, call: ServiceCall) -> Response:
        item = await find_line_item(call, request.path_params["line_item_id"])
        params = Params(request.query_params.multi_items())
        asked = page_request(params, size_override="limit")
        query = (
            select(Result, User).join(User, User.id == Result.user_id).where(Result.line_item_id == item.id)
        )
        wanted = params.get("user_id")
        if wanted is not None:
            student = await course_student(call, wanted)
            query = query.where(Result.user_id == (student.id if student is not None else -1))
        total = await call.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = await call.session.execute(
            query.order_by(Result.id).offset(asked.offset).limit(asked.per_page)
        )
        url = line_item_url(self.public_url, item)
        body = [serialize_result(result, user, url) for result, user in rows.all()]
        response = ORJSONResponse(body, media_type=RESULTS_TYPE)
        return paginate(response, request, self.public_url, asked, total, LTI_SERVICES)

    async def show(self, request: Request, call: ServiceCall) -> Response:
        item = await find_line_item(call, request.path_params["line_item_id"])
        raw = request.path_params["result_id"]
        result_id = row_id(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
        result = await call.session.get(Result, result_id) if result_id is not None else None
        if result is None or result.line_item_id != item.id:
            raise not_found()
        user = await call.session.get(User, result.user_id)
        assert user is not None
        return ORJSONResponse(
            serialize_result(result, user, line_item_url(self.public_url, item)), media_type=RESULT_TYPE
        )
