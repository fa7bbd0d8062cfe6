"""What Canvas exports to the DAP Query API: its tables, their columns as JSON Schema, and
read-only access to their rows. ``dap`` reads Canvas data through this module only.

Tables and columns take Canvas Data 2's names (``pseudonyms`` for our ``logins``,
``avatar_image_url`` for ``avatar_url``) so that DAP clients see the names they know. Columns
are listed one by one, never "every column of the model", so that a secret (password
hashes, secret and token digests) can only be exported by someone writing its name here.
Types, lengths and nullability are read from the SQLAlchemy columns, so the schema cannot
drift from the table it describes.

Schema fragments follow the dialect of Instructure's own ``strong_typing`` (which the dap
client uses to build tables from them): ``int64`` and ``date-time`` formats, enums inline,
and a nullable column is one that is not ``required`` and is left out of a record when null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, select
from sqlalchemy import Column as SqlColumn
from sqlalchemy import inspect as sql_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.changes import (
    CapturedTable,
    change_window,
    changed_keys,
    prune_changes,
    stamp_changes,
    stamp_some_changes,
)
from lmsauth.canvas.courses.models import (
    COURSE_STATES,
    ENROLLMENT_STATES,
    ENROLLMENT_TYPES,
    Course,
    Enrollment,
)
from lmsauth.canvas.models import AccessToken, Account, DeveloperKey, Login, User
from lmsauth.core.db import Base, UTCDateTime

__all__ = [
    "EXPORTED_TABLES",
    "ExportedColumn",
    "ExportedTable",
    "change_window",
    "exported_table",
    "prune_changes",
    "read_changed_rows",
    "read_records",
    "read_rows",
    "stamp_changes",
    "stamp_some_changes",
]

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class ExportedColumn:
    """One exported column: its CD2 ``name``, the model ``attribute`` it reads, and what it means."""

    name: str
    description: str
    attribute: str | None = None
    enum: tuple[str, ...] = ()
    items: str | None = None  # for JSON array columns: the JSON Schema type of the items

    @property
    def source(self) -> str:
        return self.attribute or self.name


@dataclass(frozen=True)
class ExportedTable:
    """A Canvas table as DAP shows it; the first column is the primary key (DAP's ``key``)."""

    name: str
    description: str
    model: type[Base]
    columns: tuple[ExportedColumn, ...]
    version: int = 1

    @property
    def key_column(self) -> ExportedColumn:
        return self.columns[0]

    @property
    def captured(self) -> CapturedTable:
        """What the change triggers of this table watch (``canvas.changes``): every exported column."""
        return CapturedTable(
            self.name,
            str(self.model.__tablename__),
            self.key_column.source,
            tuple(column.source for column in self.columns[1:]),
        )

    def key_schema(self) -> JsonSchema:
        return self._object_schema(self.columns[:1])

    def value_schema(self) -> JsonSchema:
        return self._object_schema(self.columns[1:])

    def record(self, row: Base) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(key, value)`` of one row, JSON-ready; null columns are left out, as DAP does."""
        key = {self.key_column.name: getattr(row, self.key_column.source)}
        value: dict[str, Any] = {}
        for column in self.columns[1:]:
            raw = getattr(row, column.source)
            if raw is not None:
                value[column.name] = _json_value(raw)
        return key, value

    def _object_schema(self, columns: Sequence[ExportedColumn]) -> JsonSchema:
        sql = sql_inspect(self.model).columns
        properties = {column.name: _column_schema(sql[column.source], column) for column in columns}
        required = [column.name for column in columns if not sql[column.source].nullable]
        return {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }


def _column_schema(sql: SqlColumn[Any], column: ExportedColumn) -> JsonSchema:
    """The JSON Schema of one column's non-null values, from its SQLAlchemy type."""
    kind = sql.type
    schema: JsonSchema
    if isinstance(kind, UTCDateTime):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(kind, Boolean):
        schema = {"type": "boolean"}
    elif isinstance(kind, Integer):
        schema = {"type": "integer", "format": "int64"}
    elif isinstance(kind, String):
        schema = {"type": "string"}
        if column.enum:
            schema["enum"] = list(column.enum)
        elif kind.length is not None:
            schema["maxLength"] = kind.length
    elif isinstance(kind, JSON) and column.items is not None:
        schema = {"type": "array", "items": {"type": column.items}}
    else:
        raise TypeError(f"no JSON Schema for {sql.table.name}.{sql.name} ({kind!r})")
    return {"description": column.description, **schema}


def _json_value(raw: Any) -> Any:
    if isinstance(raw, datetime):
        return raw.isoformat().replace("+00:00", "Z")
    if isinstance(raw, list):
        return list(raw)
    return raw


def _id(what: str) -> ExportedColumn:
    return ExportedColumn("id", f"The unique identifier of the {what}.")


EXPORTED_TABLES: tuple[ExportedTable, ...] = (
    ExportedTable(
        "accounts",
        "Accounts: the root account that holds this server's users, logins and developer keys.",
        Account,
        (
            _id("account"),
            ExportedColumn("name", "The display name of the account."),
            ExportedColumn("uuid", "The account's globally unique identifier."),
            ExportedColumn("created_at", "When the account was created."),
        ),
    ),
    ExportedTable(
        "users",
        "People who can sign in; each signs in through one or more pseudonyms (logins).",
        User,
        (
            _id("user"),
            ExportedColumn("name", "The user's full name."),
            ExportedColumn("sortable_name", 'The name for sorted lists, e.g. "Student, Sam".'),
            ExportedColumn("short_name", "The name shown in discussions and conversations."),
            ExportedColumn("locale", "The user's preferred locale, e.g. en or fr."),
            ExportedColumn("avatar_image_url", "The URL of the user's avatar.", attribute="avatar_url"),
            ExportedColumn("uuid", "The user's globally unique identifier."),
            ExportedColumn(
                "workflow_state",
                "The state of the user.",
                enum=("pre_registered", "registered", "creation_pending", "deleted"),
            ),
            ExportedColumn("created_at", "When the user was created."),
        ),
    ),
    ExportedTable(
        "pseudonyms",
        "Logins: the login name a user signs in with at an account. Passwords are never exported.",
        Login,
        (
            _id("pseudonym"),
            ExportedColumn("user_id", "The user this login belongs to (users.id)."),
            ExportedColumn("account_id", "The account this login signs in to (accounts.id)."),
            ExportedColumn("unique_id", "The login name, as the user typed it when it was created."),
            ExportedColumn(
                "workflow_state", "The state of the login.", enum=("active", "suspended", "deleted")
            ),
            ExportedColumn("last_login_at", "When the login was last used to sign in."),
            ExportedColumn("created_at", "When the login was created."),
        ),
    ),
    ExportedTable(
        "developer_keys",
        "OAuth2 clients registered with Canvas. Client secrets are never exported.",
        DeveloperKey,
        (
            _id("developer key"),
            ExportedColumn("account_id", "The account that owns the key (accounts.id)."),
            ExportedColumn("name", "The name of the integration."),
            ExportedColumn("email", "The contact email of the integration's owner."),
            ExportedColumn("icon_url", "The URL of the integration's icon."),
            ExportedColumn("redirect_uri", "The legacy redirect URI whose domain Canvas matches leniently."),
            ExportedColumn("redirect_uris", "The redirect URIs the key accepts.", items="string"),
            ExportedColumn("scopes", "The API scopes the key may request.", items="string"),
            ExportedColumn("require_scopes", "Whether tokens of this key are limited to its scopes."),
            ExportedColumn("workflow_state", "The state of the key.", enum=("active", "inactive", "deleted")),
            ExportedColumn("created_at", "When the key was created."),
            ExportedColumn("updated_at", "When the key was last changed."),
        ),
    ),
    ExportedTable(
        "access_tokens",
        "OAuth2 access tokens issued through developer keys. Token values are never exported.",
        AccessToken,
        (
            _id("access token"),
            ExportedColumn("developer_key_id", "The key the token was issued to (developer_keys.id)."),
            ExportedColumn("user_id", "The user the token acts as (users.id)."),
            ExportedColumn("purpose", "What the user was told the token is for."),
            ExportedColumn("scopes", "The API scopes the token is limited to.", items="string"),
            ExportedColumn("workflow_state", "The state of the token.", enum=("active", "deleted")),
            ExportedColumn("expires_at", "When the token stops working unless refreshed."),
            ExportedColumn("permanent_expires_at", "When the token and its refresh token stop working."),
            ExportedColumn("last_used_at", "When the token was last used (to the nearest few minutes)."),
            ExportedColumn("created_at", "When the token was created."),
            ExportedColumn("updated_at", "When the token was last changed."),
        ),
    ),
    ExportedTable(
        "courses",
        "Courses of the root account.",
        Course,
        (
            _id("course"),
            ExportedColumn("account_id", "The account the course belongs to (accounts.id)."),
            ExportedColumn("name", "The full name of the course."),
            ExportedColumn("course_code", "The short name of the course, e.g. DEMO-101."),
            ExportedColumn(
                "sis_source_id",
                "The course's id in the student information system.",
                attribute="sis_course_id",
            ),
            ExportedColumn("workflow_state", "The state of the course.", enum=COURSE_STATES),
            ExportedColumn("uuid", "The course's globally unique identifier."),
            ExportedColumn("lti_context_id", "The course's context id in LTI launches."),
            ExportedColumn("created_at", "When the course was created."),
            ExportedColumn("updated_at", "When the course was last changed."),
        ),
    ),
    ExportedTable(
        "enrollments",
        "One role of one user in one course.",
        Enrollment,
        (
            _id("enrollment"),
            ExportedColumn("user_id", "The enrolled user (users.id)."),
            ExportedColumn("course_id", "The course of the enrollment (courses.id)."),
            ExportedColumn("type", "The role: the enrollment's type.", enum=tuple(ENROLLMENT_TYPES.values())),
            ExportedColumn("workflow_state", "The state of the enrollment.", enum=ENROLLMENT_STATES),
            ExportedColumn("created_at", "When the enrollment was created."),
            ExportedColumn("updated_at", "When the enrollment was last changed."),
        ),
    ),
)

_BY_NAME = {table.name: table for table in EXPORTED_TABLES}


def exported_table(name: str) -> ExportedTable | None:
    return _BY_NAME.get(name)


async def read_records(
    session: AsyncSession, table: ExportedTable, *, after: int = 0, limit: int = 1000
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Up to ``limit`` records with a primary key above ``after``, in key order (keyset paging).

    Read-only: it only selects, so a snapshot can page through a table in any transaction.
    """
    primary = getattr(table.model, table.key_column.source)
    rows = await session.scalars(select(table.model).where(primary > after).order_by(primary).limit(limit))
    return [table.record(row) for row in rows]


Row = tuple[Any, ...]


def _selected(table: ExportedTable) -> list[Any]:
    return [getattr(table.model, column.source) for column in table.columns]


async def read_rows(
    session: AsyncSession, table: ExportedTable, *, after: int | None, limit: int
) -> list[Row]:
    """Up to ``limit`` rows (every exported column, in declaration order, the key first) with a
    key above ``after``, in key order: keyset paging, so a table of any size is read in pages."""
    primary = getattr(table.model, table.key_column.source)
    statement = select(*_selected(table)).order_by(primary).limit(limit)
    if after is not None:
        statement = statement.where(primary > after)
    return [tuple(row) for row in (await session.execute(statement)).all()]


async def read_changed_rows(
    session: AsyncSession,
    table: ExportedTable,
    since: datetime,
    until: datetime,
    *,
    after: int | None,
    limit: int,
) -> list[tuple[int, datetime, Row | None]]:
    """Up to ``limit`` rows changed in ``[since, until)``, in key order after ``after``:
    ``(key, when the change was stamped, the row as it is now or None when it is gone)``."""
    keys = await changed_keys(session, table.name, since, until, after=after, limit=limit)
    if not keys:
        return []
    primary = getattr(table.model, table.key_column.source)
    found = {
        row[0]: tuple(row)
        for row in (
            await session.execute(select(*_selected(table)).where(primary.in_([key for key, _ in keys])))
        ).all()
    }
    return [(key, stamped, found.get(key)) for key, stamped in keys]
