"""Each table's schema is a true JSON Schema: valid draft 2020-12, readable by the dap client's
own schema code (which builds its database tables from it), and every record this server
holds validates against it. No secret column is ever exported."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import pytest

from lmsauth.canvas.export import EXPORTED_TABLES, read_records
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.dap import tables
from tests.canvas.courses.conftest import enroll, make_course
from tests.conftest import run
from tests.flows import code_for

SECRET_COLUMNS = {"password_hash", "secret_digest", "token_digest", "refresh_digest", "token_hint"}


def schema_of(table_name: str) -> dict[str, Any]:
    table = tables.find_table("canvas", table_name)
    assert table is not None
    return tables.record_schema("canvas", table)


@pytest.mark.parametrize("table", [t.name for t in EXPORTED_TABLES])
def test_schema_is_valid_draft_2020_12(table: str) -> None:
    schema = schema_of(table)
    assert schema["$schema"] == jsonschema.Draft202012Validator.META_SCHEMA["$id"]
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("table", [t.name for t in EXPORTED_TABLES])
def test_dap_client_builds_its_table_from_the_schema(table: str) -> None:
    """``dap initdb`` turns the schema into a dataclass with ``strong_typing``; the first key
    property becomes the primary key (spec B7)."""
    from dap.replicator.sql_op import create_table_dataclass, get_module_for_namespace

    module = get_module_for_namespace("canvas")
    entity = create_table_dataclass(table, module, copy.deepcopy(schema_of(table)))
    fields = {field.name for field in entity.__dataclass_fields__.values()}
    expected = set(schema_of(table)["properties"]["key"]["properties"]) | set(
        schema_of(table)["properties"]["value"]["properties"]
    )
    assert fields == expected
    assert "id" in fields


@pytest.mark.parametrize("table", [t.name for t in EXPORTED_TABLES])
def test_no_secret_column_is_exported(table: str) -> None:
    schema = schema_of(table)
    names = set(schema["properties"]["key"]["properties"]) | set(schema["properties"]["value"]["properties"])
    assert not names & SECRET_COLUMNS


def test_types_lengths_and_nullability_follow_the_models() -> None:
    users = schema_of("users")["properties"]
    assert users["key"] == {
        "type": "object",
        "properties": {
            "id": {"description": "The unique identifier of the user.", "type": "integer", "format": "int64"}
        },
        "required": ["id"],
        "additionalProperties": False,
    }
    value = users["value"]
    assert value["properties"]["name"]["maxLength"] == 255
    assert value["properties"]["created_at"]["format"] == "date-time"
    assert "locale" not in value["required"] and "name" in value["required"]
    assert value["properties"]["workflow_state"]["enum"][1] == "registered"
    keys = schema_of("developer_keys")["properties"]["value"]["properties"]
    assert keys["redirect_uris"]["type"] == "array" and keys["redirect_uris"]["items"] == {"type": "string"}
    assert keys["require_scopes"]["type"] == "boolean"


def assert_timestamps_are_utc(schema: dict[str, Any], record: dict[str, Any]) -> None:
    """``format: date-time`` is only an annotation to jsonschema without extra packages: check it."""
    for part in ("meta", "key", "value"):
        for name, prop in schema["properties"][part]["properties"].items():
            if prop.get("format") == "date-time" and name in record.get(part, {}):
                text = record[part][name]
                assert text.endswith("Z") and datetime.fromisoformat(text).utcoffset() == timedelta(0)


def _all_records(settings) -> dict[str, list[dict[str, Any]]]:
    async def work() -> dict[str, list[dict[str, Any]]]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                return {
                    table.name: [
                        tables.snapshot_record(key, value, clock.now())
                        for key, value in await read_records(session, table)
                    ]
                    for table in EXPORTED_TABLES
                }
        finally:
            await db.dispose()

    result: dict[str, list[dict[str, Any]]] = run(work())
    return result


def _user_ids_page_by_page(settings) -> list[list[int]]:
    """Keyset paging through ``read_records``, one record per page."""

    async def work() -> list[list[int]]:
        db = Database(settings.resolved_database_url)
        users = tables.find_table("canvas", "users")
        assert users is not None
        pages, after = [], 0
        try:
            async with db.session() as session:
                while page := await read_records(session, users, after=after, limit=1):
                    pages.append([key["id"] for key, _ in page])
                    after = page[-1][0]["id"]
        finally:
            await db.dispose()
        return pages

    result: list[list[int]] = run(work())
    return result


def test_every_record_validates_against_its_schema(client, settings, directory) -> None:
    key = directory.key(scopes=["url:GET|/api/v1/users/:id"])
    user = directory.user(locale="fr")
    directory.user(login="other@example.edu", name="Only")  # no locale: a null column
    scope = "url:GET|/api/v1/users/:id"
    code = code_for(client, key.client_id, key.redirect_uris[0], user.login, user.password, scope=scope)
    token = client.post(
        "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": key.redirect_uris[0],
        },
    )
    assert token.status_code == 200, token.text
    course = make_course(directory, sis_course_id="BIO-101")
    enroll(directory, course, user, "StudentEnrollment")
    records = _all_records(settings)
    assert {name: len(rows) for name, rows in records.items()} == {
        "accounts": 1,
        "users": 2,
        "pseudonyms": 2,
        "developer_keys": 1,
        "access_tokens": 1,
        "courses": 1,
        "enrollments": 1,
    }
    for name, rows in records.items():
        validator = jsonschema.Draft202012Validator(
            schema_of(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        for row in rows:
            validator.validate(row)
    for name, rows in records.items():
        for row in rows:
            assert_timestamps_are_utc(schema_of(name), row)
    users = {row["value"]["name"]: row for row in records["users"]}
    assert users["Sam Student"]["value"]["locale"] == "fr"
    assert "locale" not in users["Only"]["value"]
    assert records["access_tokens"][0]["value"]["scopes"] == ["url:GET|/api/v1/users/:id"]
    assert records["courses"][0]["value"]["sis_source_id"] == "BIO-101"
    assert records["enrollments"][0]["value"]["type"] == "StudentEnrollment"
    assert _user_ids_page_by_page(settings) == [[row["key"]["id"]] for row in records["users"]]
    exported = repr(records)
    for secret in (
        key.client_secret,
        user.password,
        token.json()["access_token"],
        token.json()["refresh_token"],
    ):
        assert secret not in exported


def test_a_deleted_record_without_value_validates() -> None:
    """Incremental output: ``D`` records carry only their key (spec B4)."""
    jsonschema.validate(
        {"meta": {"ts": "2024-01-01T00:00:00Z", "action": "D"}, "key": {"id": 3}}, schema_of("users")
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"meta": {"ts": "2024-01-01T00:00:00Z"}, "key": {"id": 3}, "extra": 1}, schema_of("users")
        )
