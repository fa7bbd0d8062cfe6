"""Assignment and Grade Services (spec lti13.md 7): pylti1p3's ``AssignmentsGradesService``
makes a line item and puts a score that lmsauth's gradebook then holds; line items, scores and
results answer every rule and error of the spec."""

from __future__ import annotations

from typing import Any

import pytest
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem as ToolLineItem
from pylti1p3.service_connector import ServiceConnector
from sqlalchemy import select

from lmsauth.canvas.courses.gradebook import Assignment, LineItem, Result, Submission
from lmsauth.canvas.lti import line_items
from tests.canvas.lti.services_support import (
    AGS_SCOPES,
    LINEITEM_READONLY,
    RESULT_READONLY,
    SCORE,
    LtiWorld,
    Tool,
    classroom,
    items_path,
    lti_id,
    now_iso,
    path_of,
    registration,
    serve,
)
from tests.conftest import run
from tests.contract.conftest import conforms

LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"


def deep_link(world: LtiWorld, **arguments: Any) -> None:
    """``line_items.create_from_deep_link``, as the deep-linking response calls it."""

    async def work(session: Any) -> None:
        await line_items.create_from_deep_link(session, **arguments)

    run(world._in_session(work))


def submission_of(world: LtiWorld, user_id: int) -> Submission:
    rows = world.query(select(Submission).where(Submission.user_id == user_id))
    assert len(rows) == 1, rows
    return rows[0][0]


def refused(response: Any, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    kinds = {400: "bad_request", 401: "unauthorized", 412: "precondition_failed", 422: "unprocessable_entity"}
    assert response.json() == {"errors": {"type": kinds[status], "message": message}}


# ---------------------------------------------------------------------------- pylti1p3


def test_pylti1p3_creates_a_line_item_and_puts_a_grade_lmsauth_keeps(settings, world: LtiWorld) -> None:
    people = classroom(world)
    student = lti_id(world, people["student"])
    with serve(settings) as base:
        service = AssignmentsGradesService(
            ServiceConnector(registration(base, world.client_id())),
            {"scope": AGS_SCOPES, "lineitems": f"{base}{items_path(world)}"},
        )
        wanted = (
            ToolLineItem().set_tag("quiz-1").set_score_maximum(20).set_label("Quiz 1").set_resource_id("q1")
        )
        item = service.find_or_create_lineitem(wanted)
        assert item.get_id().startswith(f"{base}{items_path(world)}/")
        assert (
            service.find_or_create_lineitem(wanted).get_id() == item.get_id()
        )  # found by tag, not made again
        grade = (
            Grade()
            .set_score_given(8)
            .set_score_maximum(10)
            .set_timestamp(now_iso())
            .set_activity_progress("Completed")
            .set_grading_progress("FullyGraded")
            .set_user_id(student)
            .set_comment("Well done")
        )
        answer = service.put_grade(grade, item)
        assert answer["body"]["resultUrl"].startswith(item.get_id() + "/results/")
        grades = service.get_grades(item)
        assert service.get_lineitem(item.get_id()).get_label() == "Quiz 1"
    assert grades == [
        {
            "id": answer["body"]["resultUrl"],
            "scoreOf": item.get_id(),
            "userId": student,
            "resultScore": 8.0,
            "resultMaximum": 10.0,
            "comment": "Well done",
        }
    ]
    assignment = world.query(select(Assignment))
    assert [(a.name, a.points_possible, a.workflow_state) for (a,) in assignment] == [
        ("Quiz 1", 20.0, "published")
    ]
    submission = submission_of(world, people["student"])
    assert (submission.score, submission.grade, submission.workflow_state) == (16.0, "16", "graded")


# ---------------------------------------------------------------------------- line items


def test_line_item_fields_and_media_types(client, world) -> None:
    classroom(world)
    tool = Tool(client, world)
    response = tool.call(
        "POST",
        items_path(world),
        {
            "label": "Essay",
            "scoreMaximum": 50,
            "resourceId": "essay",
            "tag": "grade",
            "startDateTime": "2026-01-01T00:00:00Z",
            "endDateTime": "2026-02-01T12:00:00+00:00",
            "https://canvas.instructure.com/lti/submission_type": {
                "type": "external_tool",
                "external_tool_url": "https://tool.example.com/essay",
            },
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == LINEITEM_TYPE
    body = response.json()
    assert body == {
        "id": body["id"],
        "scoreMaximum": 50.0,
        "label": "Essay",
        "resourceId": "essay",
        "tag": "grade",
        "startDateTime": "2026-01-01T00:00:00Z",
        "endDateTime": "2026-02-01T12:00:00Z",
        "https://canvas.instructure.com/lti/submission_type": {
            "type": "external_tool",
            "external_tool_url": "https://tool.example.com/essay",
        },
    }
    listed = tool.call("GET", items_path(world), None, **{"include[]": "launch_url"})
    assert listed.headers["content-type"] == "application/vnd.ims.lis.v2.lineitemcontainer+json"
    assert listed.json() == [
        {**body, "https://canvas.instructure.com/lti/launch_url": "https://tool.example.com/launch"}
    ]
    shown = tool.call("GET", path_of(body["id"]))
    assert (shown.status_code, shown.headers["content-type"], shown.json()) == (200, LINEITEM_TYPE, body)
    conforms(response, "POST", "/api/lti/courses/{course_id}/line_items")
    conforms(listed, "GET", "/api/lti/courses/{course_id}/line_items")
    conforms(shown, "GET", "/api/lti/courses/{course_id}/line_items/{line_item_id}")


def test_list_filters_paging_and_only_this_keys_items(client, world) -> None:
    classroom(world)
    world.key("other-tool")
    world.install("other-tool")
    mine, theirs = Tool(client, world), Tool(client, world, "other-tool")
    for number in range(12):
        mine.create(
            items_path(world),
            label=f"Q{number}",
            tag="even" if number % 2 == 0 else "odd",
            resourceId=f"r{number}",
        )
    theirs.create(items_path(world), label="Theirs", tag="even")
    first = mine.call("GET", items_path(world))
    assert [item["label"] for item in first.json()] == [f"Q{n}" for n in range(10)]
    assert 'rel="next"' in first.headers["link"]
    assert [i["label"] for i in mine.call("GET", items_path(world), page=2).json()] == ["Q10", "Q11"]
    assert len(mine.call("GET", items_path(world), tag="even", limit=50).json()) == 6
    assert [i["label"] for i in mine.call("GET", items_path(world), resource_id="r3").json()] == ["Q3"]
    assert [i["label"] for i in theirs.call("GET", items_path(world)).json()] == ["Theirs"]
    assert "limit" not in mine.call("GET", items_path(world), limit=5).headers["link"]


def test_another_keys_line_item_is_412(client, world) -> None:
    classroom(world)
    world.key("other-tool")
    world.install("other-tool")
    item = Tool(client, world).create(items_path(world))
    theirs = Tool(client, world, "other-tool")
    for method in ("GET", "PUT", "DELETE"):
        refused(theirs.call(method, path_of(item["id"]), {"label": "x"}), 412, line_items.NO_PERMISSION)
    refused(theirs.score(path_of(item["id"]), "1"), 412, line_items.NO_PERMISSION)


def test_a_line_item_of_another_course_is_404(client, world) -> None:
    classroom(world)
    world.install("tool", course="other", name="tool-in-other")
    tool = Tool(client, world)
    item = tool.create(items_path(world, "other"))
    elsewhere = f"{items_path(world)}/{item['id'].rsplit('/', 1)[1]}"
    response = tool.call("GET", elsewhere)
    assert response.status_code == 404
    assert response.json() == {"errors": [{"message": "The specified resource does not exist."}]}
    assert tool.call("GET", f"{items_path(world)}/abc").status_code == 404


def test_a_deleted_assignments_line_item_is_an_empty_404(client, world) -> None:
    classroom(world)
    tool = Tool(client, world)
    item = tool.create(items_path(world))
    world.update(Assignment, 1, workflow_state="deleted")
    response = tool.call("GET", path_of(item["id"]))
    assert (response.status_code, response.content) == (404, b"")
    assert tool.call("GET", items_path(world)).json() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scoreMaximum": 10}, "Validation failed: Label can't be blank"),
        ({"label": "x"}, "Validation failed: Score maximum is not a number"),
        ({"label": "x", "scoreMaximum": "ten"}, "Validation failed: Score maximum is not a number"),
        (
            {"label": "", "scoreMaximum": -1},
            "Validation failed: Label can't be blank, Score maximum must be greater than or equal to 0",
        ),
    ],
)
def test_create_validation(client, world, body: dict[str, Any], message: str) -> None:
    classroom(world)
    refused(Tool(client, world).call("POST", items_path(world), body), 422, message)
    assert world.query(select(Assignment)) == []


def test_create_for_a_resource_link(client, world) -> None:
    classroom(world)

    deep_link(
        world,
        course_id=world.courses["course"],
        developer_key_id=world.keys["tool"],
        line_item={"scoreMaximum": 30, "label": "Lab", "resourceId": "lab", "tag": "t"},
        resource_link_id="rl-1",
    )
    tool = Tool(client, world)
    second = tool.create(items_path(world), label="Lab, part 2", resourceLinkId="rl-1")
    assert second["resourceLinkId"] == "rl-1"
    assignments = world.query(select(Assignment))
    assert [(a.name, a.points_possible, a.workflow_state) for (a,) in assignments] == [
        ("Lab", 30.0, "unpublished")
    ]
    unknown = tool.call(
        "POST", items_path(world), {"label": "x", "scoreMaximum": 1, "resourceLinkId": "nope"}
    )
    assert unknown.status_code == 404
    bad = tool.call("POST", items_path(world), {"label": "x", "scoreMaximum": 1, "resourceLinkId": ""})
    assert (bad.status_code, bad.content) == (412, b"")
    # The deep link's line item is its assignment's own: a tool cannot delete it, but can update it.
    linked = tool.call("GET", items_path(world), resource_link_id="rl-1").json()[0]
    assert (r := tool.call("DELETE", path_of(linked["id"]))).status_code == 401 and r.content == b""
    updated = tool.call(
        "PUT",
        path_of(linked["id"]),
        {"label": "Lab 1", "scoreMaximum": 40, "endDateTime": "2026-03-01T00:00:00Z"},
    )
    assert updated.json()["label"] == "Lab 1"
    (assignment,) = world.query(select(Assignment))[0]
    assert (assignment.name, assignment.points_possible, assignment.due_at.isoformat()) == (
        "Lab 1",
        40.0,
        "2026-03-01T00:00:00+00:00",
    )


def test_deep_link_line_item_needs_score_maximum(client, world) -> None:
    classroom(world)
    with pytest.raises(ValueError, match=r"lineItem.scoreMaximum is a required field"):
        deep_link(world, course_id=1, developer_key_id=1, line_item={"label": "x"}, resource_link_id="r")


def test_update_and_delete_a_tools_own_line_item(client, world) -> None:
    classroom(world)
    tool = Tool(client, world)
    item = tool.create(items_path(world), tag="a")
    updated = tool.call("PUT", path_of(item["id"]), {"label": "Renamed", "scoreMaximum": 5, "tag": "b"})
    assert updated.status_code == 200
    assert (updated.json()["label"], updated.json()["scoreMaximum"], updated.json()["tag"]) == (
        "Renamed",
        5.0,
        "b",
    )
    conforms(updated, "PUT", "/api/lti/courses/{course_id}/line_items/{line_item_id}")
    deleted = tool.call("DELETE", path_of(item["id"]))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert tool.call("GET", path_of(item["id"])).status_code == 404
    assert [a.workflow_state for (a,) in world.query(select(Assignment))] == ["deleted"]


# ---------------------------------------------------------------------------- scopes, both ways


def test_read_only_line_item_scope(client, world) -> None:
    classroom(world)
    item = Tool(client, world).create(items_path(world))
    reader = Tool(client, world, scopes=[LINEITEM_READONLY])
    assert reader.call("GET", items_path(world)).status_code == 200
    assert reader.call("GET", path_of(item["id"])).status_code == 200
    for method, url in (
        ("POST", items_path(world)),
        ("PUT", path_of(item["id"])),
        ("DELETE", path_of(item["id"])),
    ):
        refused(reader.call(method, url, {"label": "x", "scoreMaximum": 1}), 401, "Insufficient permissions")
    refused(reader.score(path_of(item["id"]), "1"), 401, "Insufficient permissions")
    refused(reader.call("GET", path_of(item["id"]) + "/results"), 401, "Insufficient permissions")


def test_score_and_result_scopes(client, world) -> None:
    people = classroom(world)
    item = Tool(client, world).create(items_path(world))
    scorer = Tool(client, world, scopes=[SCORE])
    assert (
        scorer.score(
            path_of(item["id"]), lti_id(world, people["student"]), scoreGiven=1, scoreMaximum=10
        ).status_code
        == 200
    )
    refused(scorer.call("GET", items_path(world)), 401, "Insufficient permissions")
    refused(scorer.call("GET", path_of(item["id"]) + "/results"), 401, "Insufficient permissions")
    reader = Tool(client, world, scopes=[RESULT_READONLY])
    assert len(reader.call("GET", path_of(item["id"]) + "/results").json()) == 1


def test_another_tools_course(client, world) -> None:
    classroom(world)
    world.key("stranger")
    world.install("stranger", course="other")
    stranger = Tool(client, world, "stranger")
    refused(
        stranger.call("GET", items_path(world)),
        401,
        "Access Token not linked to a Tool associated with this Context",
    )


# ---------------------------------------------------------------------------- scores


@pytest.fixture
def graded(client, world):
    people = classroom(world)
    tool = Tool(client, world)
    item = tool.create(items_path(world), scoreMaximum=20)
    return tool, path_of(item["id"]), people


@pytest.mark.parametrize("field", ["userId", "activityProgress", "gradingProgress", "timestamp"])
def test_required_score_fields(graded, world, field: str) -> None:
    tool, item, people = graded
    score = {
        "userId": lti_id(world, people["student"]),
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": now_iso(),
    }
    del score[field]
    response = tool.call("POST", item + "/scores", score)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": f"{field} is missing"}]}


@pytest.mark.parametrize("who", ["ta", "designer", "observer", "elsewhere", "dropped"])
def test_score_for_someone_who_is_not_a_student(graded, world, who: str) -> None:
    tool, item, people = graded
    refused(tool.score(item, lti_id(world, people[who])), 422, "User not found in course or is not a student")
    refused(tool.score(item, "no-such-user"), 422, "User not found in course or is not a student")


def test_score_by_canvas_user_id(graded, world) -> None:
    tool, item, people = graded
    assert tool.score(item, str(people["student"]), scoreGiven=5, scoreMaximum=10).status_code == 200
    assert submission_of(world, people["student"]).score == 10.0


def test_timestamps(graded, world) -> None:
    tool, item, people = graded
    student = lti_id(world, people["student"])
    refused(
        tool.score(item, student, timestamp="yesterday"),
        400,
        "Provided timestamp of yesterday not a valid timestamp",
    )
    assert tool.score(item, student, scoreGiven=1, scoreMaximum=2).status_code == 200
    old = now_iso(-60)
    response = tool.score(item, student, timestamp=old)
    assert response.status_code == 400
    assert response.json()["errors"]["message"].startswith(
        f"Provided timestamp of {old} before last updated timestamp of "
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scoreGiven": -1, "scoreMaximum": 10}, "ScoreGiven must be greater than or equal to 0"),
        ({"scoreGiven": 1}, "ScoreMaximum not supplied when ScoreGiven present."),
        ({"scoreGiven": 1, "scoreMaximum": -2}, "ScoreMaximum must be greater than or equal to 0"),
        ({"scoreGiven": 1, "scoreMaximum": 0}, "cannot be zero if line item's maximum is not zero"),
        ({"activityProgress": "Done"}, "ActivityProgress is not included in the list"),
        ({"gradingProgress": "Graded"}, "GradingProgress is not included in the list"),
        (
            {"https://canvas.instructure.com/lti/submission": {"submission_type": "online_upload"}},
            "Content items must be provided with submission type 'online_upload'",
        ),
    ],
)
def test_score_validation(graded, world, body: dict[str, Any], message: str) -> None:
    tool, item, people = graded
    refused(tool.score(item, lti_id(world, people["student"]), **body), 422, message)
    assert world.query(select(Result)) == []


def test_submitted_at_in_the_future(graded, world) -> None:
    tool, item, people = graded
    later = now_iso(120)
    response = tool.score(item, lti_id(world, people["student"]), submission={"submittedAt": later})
    refused(response, 400, f"Provided submitted_at timestamp of {later} in the future")


def test_grading_rules(graded, world) -> None:
    tool, item, people = graded
    student = lti_id(world, people["student"])
    tool.score(item, student, scoreGiven=3, scoreMaximum=4)
    assert (submission_of(world, people["student"]).score, submission_of(world, people["student"]).grade) == (
        15.0,
        "15",
    )
    tool.score(
        item,
        student,
        gradingProgress="Pending",
        scoreGiven=1,
        scoreMaximum=4,
        **{"https://canvas.instructure.com/lti/submission": {"preserve_score": True}},
    )
    assert submission_of(world, people["student"]).score == 15.0
    tool.score(item, student, gradingProgress="Pending", scoreGiven=1, scoreMaximum=4)
    cleared = submission_of(world, people["student"])
    assert (cleared.score, cleared.grade, cleared.workflow_state) == (None, None, "submitted")
    tool.score(item, student, gradingProgress="PendingManual", scoreGiven=2.5, scoreMaximum=4)
    assert submission_of(world, people["student"]).grade == "12.5"


def test_pass_fail(graded, world) -> None:
    tool, item, people = graded
    world.update(Assignment, 1, grading_type="pass_fail")
    tool.score(item, lti_id(world, people["student"]), scoreGiven=1, scoreMaximum=10)
    assert (submission_of(world, people["student"]).grade, submission_of(world, people["student"]).score) == (
        "complete",
        20.0,
    )
    tool.score(item, lti_id(world, people["student"]), scoreGiven=0, scoreMaximum=10)
    assert submission_of(world, people["student"]).grade == "incomplete"


def test_score_answer(graded, world) -> None:
    tool, item, people = graded
    items = [{"type": "file", "url": "https://tool.example.com/f.pdf", "title": "f"}]
    response = tool.score(
        item,
        lti_id(world, people["student"]),
        **{
            "https://canvas.instructure.com/lti/submission": {
                "submission_type": "online_upload",
                "content_items": items,
            }
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.ims.lis.v1.score+json"
    body = response.json()
    assert body["resultUrl"] == f"http://testserver{item}/results/1"
    assert body["https://canvas.instructure.com/lti/submission"] == {"content_items": items}
    conforms(response, "POST", "/api/lti/courses/{course_id}/line_items/{line_item_id}/scores")


def test_a_body_that_is_not_json(graded) -> None:
    tool, item, _ = graded
    response = tool.client.post(
        item + "/scores", content=b"{not json", headers={"Authorization": f"Bearer {tool.token}"}
    )
    assert (response.status_code, response.json()) == (400, {"error": "The request body is not JSON"})


# ---------------------------------------------------------------------------- results


def test_results(graded, world) -> None:
    tool, item, people = graded
    student, second = lti_id(world, people["student"]), lti_id(world, people["student2"])
    tool.score(item, student, scoreGiven=1, scoreMaximum=2)
    tool.score(item, second, scoreGiven=2, scoreMaximum=2, gradingProgress="Pending", comment="later")
    listed = tool.call("GET", item + "/results")
    assert listed.headers["content-type"] == "application/vnd.ims.lis.v2.resultcontainer+json"
    assert [r["userId"] for r in listed.json()] == [student, second]
    assert listed.json()[1]["comment"] == "later"
    only = tool.call("GET", item + "/results", user_id=second).json()
    assert [r["userId"] for r in only] == [second]
    assert tool.call("GET", item + "/results", user_id=lti_id(world, people["ta"])).json() == []
    one = tool.call("GET", path_of(listed.json()[0]["id"]))
    assert one.json() == listed.json()[0]
    assert tool.call("GET", item + "/results/999").status_code == 404
    conforms(listed, "GET", "/api/lti/courses/{course_id}/line_items/{line_item_id}/results")
    conforms(one, "GET", "/api/lti/courses/{course_id}/line_items/{line_item_id}/results/{result_id}")


def test_line_item_row_records_the_key(client, world) -> None:
    classroom(world)
    Tool(client, world).create(items_path(world))
    (item,) = world.query(select(LineItem))[0]
    assert item.developer_key_id == world.keys["tool"]
