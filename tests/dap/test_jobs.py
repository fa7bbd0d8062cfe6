"""DAP query jobs over HTTP (spec B2 rows 3 to 6, B4, B5): the job's states and their exact
members, snapshots and incrementals in every format, object URLs, and every bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from lmsauth.core import clock
from lmsauth.dap import jobs
from tests.dap.jobs_helpers import (
    bearer,
    csv_rows,
    download,
    job_text,
    jsonl_records,
    object_url,
    post_query,
    run_query,
    tsv_rows,
    wait_for,
)
from tests.identity.helpers import access_token, make_client

SNAPSHOT_MEMBERS = {"id", "status", "expires_at", "objects", "schema_version", "at"}
INCREMENTAL_MEMBERS = {"id", "status", "expires_at", "objects", "schema_version", "since", "until"}


@pytest.fixture
def token(client, settings) -> str:
    return access_token(client, make_client(settings))


@pytest.fixture
def people(directory):
    return [
        directory.user(login="ann@example.edu", name="Ann Archer"),
        directory.user(login="bob@example.edu", name="Bob\tBackslash\\ New\nline"),
        directory.user(login="cy@example.edu", name='Cy "Quote", Comma'),
    ]


def parse_time(value: str) -> datetime:
    assert value.endswith("Z")
    return datetime.fromisoformat(value)


def assert_error(response, status: int, error_type: str, *extra: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"type", "uuid", "message", *extra}
    assert error["type"] == error_type
    assert uuid.UUID(error["uuid"])
    return error


def test_snapshot_jsonl_holds_every_live_row_as_of_at(client, token, people) -> None:
    started = clock.now()
    response = post_query(client, token, "users", format="jsonl")
    assert response.status_code in (200, 202)
    job = wait_for(client, token, response.json()["id"])
    assert set(job) == SNAPSHOT_MEMBERS and job["status"] == "complete"
    assert job["schema_version"] == 1 and type(job["schema_version"]) is int
    at = parse_time(job["at"])
    assert started <= at <= clock.now()
    assert started + timedelta(hours=24) <= parse_time(job["expires_at"]) <= at + timedelta(hours=24)
    assert len(job["objects"]) == 1 and job["objects"][0]["id"].endswith(".json.gz")
    records = jsonl_records(job_text(client, token, job))
    assert [record["key"] for record in records] == [{"id": person.id} for person in people]
    for record, person in zip(records, people, strict=True):
        assert record["meta"] == {"ts": job["at"]}
        assert record["value"]["name"] == person.name
        assert "locale" not in record["value"]  # null columns are left out
        assert set(record["value"]) <= {
            "name",
            "sortable_name",
            "short_name",
            "avatar_image_url",
            "uuid",
            "workflow_state",
            "created_at",
        }


def test_snapshot_csv_and_tsv_carry_dotted_headers_and_escape_values(client, token, people) -> None:
    csv_job = run_query(client, token, "users", format="csv")
    assert csv_job["objects"][0]["id"].endswith(".csv.gz")
    rows = csv_rows(job_text(client, token, csv_job))
    assert list(rows[0])[:4] == ["meta.ts", "key.id", "value.name", "value.sortable_name"]
    assert [row["value.name"] for row in rows] == [person.name for person in people]
    assert rows[0]["value.locale"] == ""

    tsv_job = run_query(client, token, "users", format="tsv", mode="condensed")
    assert tsv_job["objects"][0]["id"].endswith(".tsv.gz")
    texts = job_text(client, token, tsv_job)
    assert "Bob\\tBackslash\\\\ New\\nline" in texts[0]  # PostgreSQL COPY escapes
    rows = tsv_rows(texts)
    assert [row["value.name"] for row in rows] == [person.name for person in people]
    assert rows[0]["value.locale"] is None and rows[0]["meta.ts"] == tsv_job["at"]


def test_array_columns_are_json_cells(client, token, directory) -> None:
    directory.key(redirect_uris=["https://a.example/cb", "https://b.example/cb"], scopes=[])
    rows = tsv_rows(job_text(client, token, run_query(client, token, "developer_keys", format="tsv")))
    assert rows[-1]["value.redirect_uris"] == '["https://a.example/cb","https://b.example/cb"]'
    assert rows[-1]["value.require_scopes"] == "false"


def test_the_same_query_while_its_job_is_live_returns_that_job(client, token, monkeypatch) -> None:
    async def idle(self) -> bool:
        return False

    monkeypatch.setattr(jobs.JobRunner, "run_one", idle)
    first = post_query(client, token, "users", format="jsonl")
    assert first.status_code == 202
    assert first.json() == {
        "id": first.json()["id"],
        "status": "waiting",
        "expires_at": first.json()["expires_at"],
    }
    assert post_query(client, token, "users", format="jsonl").json()["id"] == first.json()["id"]
    assert post_query(client, token, "users", format="csv").json()["id"] != first.json()["id"]
    assert post_query(client, token, "accounts", format="jsonl").json()["id"] != first.json()["id"]
    response = client.get(f"/dap/job/{first.json()['id']}", headers=bearer(token))
    assert response.status_code == 202 and response.json()["status"] == "waiting"


def test_incremental_gives_changes_in_the_window_as_upserts_and_deletes(
    client, token, directory, people
) -> None:
    snapshot = run_query(client, token, "users", format="jsonl")
    execute(
        directory, text("UPDATE users SET name = 'Ann Renamed' WHERE id = :id").bindparams(id=people[0].id)
    )
    newcomer = directory.user(login="dee@example.edu", name="Dee")
    execute(directory, text("DELETE FROM logins WHERE user_id = :id").bindparams(id=people[2].id))
    execute(directory, text("DELETE FROM users WHERE id = :id").bindparams(id=people[2].id))
    # A change to a column DAP does not export is not a change it shows.
    execute(
        directory, text("UPDATE users SET email = 'x@example.edu' WHERE id = :id").bindparams(id=people[1].id)
    )

    job = run_query(client, token, "users", format="jsonl", since=snapshot["at"])
    assert set(job) == INCREMENTAL_MEMBERS
    assert job["since"] == snapshot["at"]
    until = parse_time(job["until"])
    assert until > parse_time(snapshot["at"])
    records = {record["key"]["id"]: record for record in jsonl_records(job_text(client, token, job))}
    assert set(records) == {people[0].id, newcomer.id, people[2].id}
    assert records[people[0].id]["meta"]["action"] == "U"
    assert records[people[0].id]["value"]["name"] == "Ann Renamed"
    assert records[newcomer.id]["value"]["name"] == "Dee"
    deleted = records[people[2].id]
    assert deleted["meta"]["action"] == "D" and set(deleted) == {"meta", "key"}
    for record in records.values():
        assert parse_time(job["since"]) <= parse_time(record["meta"]["ts"]) < until

    later = run_query(client, token, "users", format="tsv", mode="condensed", since=job["until"])
    texts = job_text(client, token, later)
    assert texts[0].split("\n")[0].startswith("meta.ts\tmeta.action\tkey.id\tvalue.name")
    assert tsv_rows(texts) == []


def test_incremental_accepts_any_offset_and_a_bounded_until(client, token, directory, people) -> None:
    snapshot = run_query(client, token, "users", format="jsonl")
    at = parse_time(snapshot["at"])
    directory.user(login="eve@example.edu", name="Eve")
    run_query(client, token, "accounts", format="jsonl")  # a job stamps the changes so far
    clock.advance(0.01)
    middle = clock.now()
    clock.advance(0.01)
    directory.user(login="fay@example.edu", name="Fay")
    offset = at.astimezone(timezone_plus_two()).isoformat()
    first = run_query(client, token, "users", format="jsonl", since=offset, until=middle.isoformat())
    assert first["since"] == snapshot["at"]
    names = [record["value"]["name"] for record in jsonl_records(job_text(client, token, first))]
    assert names == ["Eve"]
    second = run_query(client, token, "users", format="jsonl", since=middle.isoformat())
    names = [record["value"]["name"] for record in jsonl_records(job_text(client, token, second))]
    assert names == ["Fay"]


def timezone_plus_two():
    from datetime import timezone

    return timezone(timedelta(hours=2))


def test_changes_are_captured_without_the_orm_and_rollbacks_leave_none(
    client, token, directory, settings
) -> None:
    key = directory.key()
    person = directory.user()
    snapshot = run_query(client, token, "access_tokens", format="jsonl")
    key_id = directory.query(text("SELECT id FROM developer_keys WHERE name = 'Test Integration'"))[0][0]
    insert = text(
        "INSERT INTO access_tokens (user_id, developer_key_id, token_digest, token_hint, scopes, "
        "remember_access, workflow_state, created_at, updated_at) VALUES (:user, :key, :digest, 'abcde', "
        "'[]', false, 'active', :now, :now)"
    )
    now = clock.now().replace(tzinfo=None)
    execute(directory, insert.bindparams(user=person.id, key=key_id, digest="d1" * 32, now=now))
    execute(directory, insert.bindparams(user=person.id, key=key_id, digest="d2" * 32, now=now))
    with pytest.raises(RuntimeError, match="rolled back"):
        run_and_roll_back(directory, insert.bindparams(user=person.id, key=key_id, digest="d3" * 32, now=now))
    job = run_query(client, token, "access_tokens", format="csv", since=snapshot["at"])
    rows = csv_rows(job_text(client, token, job))
    assert [(row["meta.action"], row["value.workflow_state"]) for row in rows] == [("U", "active")] * 2
    assert key.client_id


def execute(directory, statement) -> None:
    from tests.conftest import run

    async def work(session) -> None:
        await session.execute(statement)

    run(directory._in_session(work))


def run_and_roll_back(directory, statement) -> None:
    from tests.conftest import run

    async def work(session) -> None:
        await session.execute(statement)
        raise RuntimeError("rolled back")

    run(directory._in_session(work))


def test_bad_queries_get_dap_errors(client, token) -> None:
    url = "/dap/query/canvas/table/users/data"
    headers = {**bearer(token), "Content-Type": "application/json"}
    error = assert_error(
        client.post(url, content=b'{"format": "jsonl",\n  oops}', headers=headers),
        400,
        "ValidationError",
        "location",
    )
    assert error["location"] == {"line": 2, "column": 3, "character": 22}
    for body in (
        b"[]",
        b'{"format": "xml"}',
        b"{}",
        b'{"format": "jsonl", "mode": "compact"}',
        b'{"format": "jsonl", "type": "snapshot"}',
        b'{"format": "jsonl", "since": "2024-01-01T00:00:00"}',
        b'{"format": "jsonl", "since": "2024-01-01"}',
        b'{"format": "jsonl", "since": 5}',
        b'{"format": "jsonl", "until": "2024-01-01T00:00:00Z"}',
        b'{"format": "jsonl", "since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}',
    ):
        error = assert_error(
            client.post(url, content=body, headers=headers), 400, "ValidationError", "location"
        )
        assert set(error["location"]) == {"line", "column", "character"}
    assert_error(post_query(client, token, "nope", format="jsonl"), 404, "NotFoundError", "id", "kind")
    assert_error(
        client.post("/dap/query/other/table/users/data", json={"format": "jsonl"}, headers=bearer(token)),
        404,
        "NotFoundError",
        "id",
        "kind",
    )
    assert_error(client.post(url, json={"format": "jsonl"}), 401, "AuthenticationError")
    assert_error(client.get(url, headers=bearer(token)), 405, "MethodNotAllowedError")


def test_a_since_older_than_the_change_log_needs_a_snapshot(client, token) -> None:
    error = assert_error(
        post_query(client, token, "users", format="jsonl", since="2020-01-01T00:00:00Z"),
        400,
        "SnapshotRequiredError",
        "since",
    )
    assert parse_time(error["since"]) >= datetime(2020, 1, 1, tzinfo=UTC)
    snapshot = run_query(client, token, "users", format="jsonl")
    error = assert_error(
        post_query(client, token, "users", format="jsonl", since="2020-01-01T00:00:00Z"),
        400,
        "SnapshotRequiredError",
        "since",
    )
    assert parse_time(error["since"]) <= parse_time(snapshot["at"])
    future = (clock.now() + timedelta(hours=1)).isoformat()
    assert_error(
        post_query(client, token, "users", format="jsonl", since=snapshot["at"], until=future),
        400,
        "OutOfRangeError",
        "since",
        "until",
    )


def test_jobs_and_objects_belong_to_their_client_and_expire_after_24_hours(
    client, token, settings, people
) -> None:
    job = run_query(client, token, "users", format="jsonl")
    other = access_token(client, make_client(settings, principal="inst-2"))
    assert_error(
        client.get(f"/dap/job/{job['id']}", headers=bearer(other)), 404, "NotFoundError", "id", "kind"
    )
    object_id = job["objects"][0]["id"]
    assert_error(
        client.post("/dap/object/url", json=[{"id": object_id}], headers=bearer(other)),
        404,
        "NotFoundError",
        "id",
        "kind",
    )
    assert_error(client.get("/dap/job/not-a-job", headers=bearer(token)), 404, "NotFoundError", "id", "kind")
    url = object_url(client, token, object_id)
    clock.advance(24 * 3600 + 1)
    token = access_token(client, make_client(settings, principal="inst-3"))
    assert_error(
        client.get(f"/dap/job/{job['id']}", headers=bearer(token)), 404, "NotFoundError", "id", "kind"
    )
    parts = urlsplit(url)
    assert client.get(f"{parts.path}?{parts.query}").status_code == 403


def test_object_urls_are_signed_and_expire(client, token, people) -> None:
    job = run_query(client, token, "users", format="jsonl")
    object_id = job["objects"][0]["id"]
    url = object_url(client, token, object_id)
    parts = urlsplit(url)
    assert parts.path.endswith(".json.gz") and "signature=" in parts.query
    assert len(download(client, url).splitlines()) == len(people)
    tampered = parts.query.replace("signature=", "signature=A")
    assert_error(client.get(f"{parts.path}?{tampered}"), 403, "AccessDenied")
    later = parts.query.replace("expires=", "expires=9")
    assert_error(client.get(f"{parts.path}?{later}"), 403, "AccessDenied")
    other_path = parts.path.replace("part-00000", "part-00001")
    assert_error(client.get(f"{other_path}?{parts.query}"), 403, "AccessDenied")
    assert_error(client.get(parts.path), 403, "AccessDenied")
    assert_error(client.get(f"{parts.path}?expires=1&signature=%C3%A9t%C3%A9"), 403, "AccessDenied")
    clock.advance(15 * 60 + 1)
    assert_error(client.get(f"{parts.path}?{parts.query}"), 403, "AccessDenied")
    fresh = object_url(client, token, object_id)
    assert download(client, fresh)


def test_object_url_requests_are_checked(client, token) -> None:
    for body in (b"{}", b"[]", b'[{"id": 1}]', b'[{"id": "a", "x": 1}]', b"nope"):
        response = client.post(
            "/dap/object/url", content=body, headers={**bearer(token), "Content-Type": "application/json"}
        )
        assert_error(response, 400, "ValidationError", "location")
    error = assert_error(
        client.post("/dap/object/url", json=[{"id": "nojob/part-00000-1.json.gz"}], headers=bearer(token)),
        404,
        "NotFoundError",
        "id",
        "kind",
    )
    assert error["kind"] == "object"
    assert_error(client.post("/dap/object/url", json=[{"id": "x"}]), 401, "AuthenticationError")
