"""Which namespaces and tables DAP serves, and the JSON Schema of their records.

A record is ``{"meta": {...}, "key": {<primary key>}, "value": {<other columns>}}`` (spec B4).
Canvas says what ``key`` and ``value`` hold; the record envelope and ``meta`` are DAP's and
live here. The schema is a real JSON Schema (draft 2020-12, the dialect Instructure's
``strong_typing`` stamps on its schemas) that every exported record validates against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lmsauth.canvas.export import EXPORTED_TABLES, ExportedTable, exported_table

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CANVAS = "canvas"
NAMESPACES: dict[str, tuple[ExportedTable, ...]] = {CANVAS: EXPORTED_TABLES}

# Spec B4: every record carries when its state was taken; incremental output adds the action,
# U (upsert) or D (hard delete: the record then has no ``value``). INFERRED: the real member
# names beyond ``action`` are unpublished; ``ts`` is ours.
META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ts": {
            "description": "When this state of the row was taken.",
            "type": "string",
            "format": "date-time",
        },
        "action": {
            "description": "In incremental output: U (inserted or updated) or D (deleted).",
            "type": "string",
            "enum": ["U", "D"],
        },
    },
    "required": ["ts"],
    "additionalProperties": False,
}


def table_names(namespace: str) -> list[str] | None:
    """The namespace's tables in name order, or ``None`` when there is no such namespace."""
    tables = NAMESPACES.get(namespace)
    return None if tables is None else sorted(table.name for table in tables)


def find_table(namespace: str, name: str) -> ExportedTable | None:
    return exported_table(name) if namespace == CANVAS else None


def record_schema(namespace: str, table: ExportedTable) -> dict[str, Any]:
    """The JSON Schema every record of ``table`` validates against."""
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"{namespace}.{table.name}",
        "description": table.description,
        "type": "object",
        "properties": {
            "meta": META_SCHEMA,
            "key": table.key_schema(),
            "value": table.value_schema(),
        },
        "required": ["meta", "key"],
        "additionalProperties": False,
    }


def versioned_schema(namespace: str, table: ExportedTable) -> dict[str, Any]:
    """The body of ``GET .../schema``: exactly ``schema`` and ``version`` (spec B2)."""
    return {"schema": record_schema(namespace, table), "version": table.version}


def snapshot_record(key: dict[str, Any], value: dict[str, Any], taken_at: datetime) -> dict[str, Any]:
    """One snapshot record (no ``action``: snapshots hold only live rows)."""
    return {"meta": {"ts": taken_at.isoformat().replace("+00:00", "Z")}, "key": key, "value": value}
