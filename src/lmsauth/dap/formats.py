"""The output formats of a query job (spec B4): JSON Lines, CSV and TSV, each gzip-compressed.

A record is ``{"meta": {"ts", "action"}, "key": {...}, "value": {...}}``. Snapshots hold live
rows only and their ``meta`` has no ``action``; incrementals mark each row ``U`` (inserted or
updated, the row as it is now) or ``D`` (deleted: ``key`` only). CSV and TSV flatten a record
into dotted column names (``meta.ts``, ``key.id``, ``value.name``), every column of the schema
in schema order, so a file always has the same header; nested values (array columns such as
``scopes``) are JSON text in one cell, which is what ``mode: condensed`` asks for. Our tables
have no nested objects, so ``expanded`` has nothing more to spread out and gives the same
columns (docs/fidelity.md).

- JSON Lines: ``orjson`` (datetimes as RFC 3339 with ``Z``).
- CSV: the stdlib ``csv`` module; a null is an empty cell.
- TSV: PostgreSQL ``COPY ... (FORMAT text)``, which is what the dap replicator parses (its
  ``tsv`` package): ``\\N`` for null, ``true``/``false``, and backslash escapes for
  backslash, tab, newline, carriage return and the other control characters it decodes.
  Hand-written (``tsv_field``, a ``str.translate`` table): the stdlib ``csv`` module can only
  quote, never backslash-escape, and the dap client's own writer is not a dependency of the
  server; tests read our files back with the client's parser.
- gzip: the stdlib ``zlib`` in gzip framing (``wbits=31``), streamed, so a file of any size is
  written in bounded memory (``gzip.GzipFile`` needs a file object; this also feeds the
  database store).
"""

from __future__ import annotations

import csv
import functools
import io
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson

from lmsauth.canvas.export import ExportedTable

FORMATS = ("jsonl", "csv", "tsv")
EXTENSIONS = {"jsonl": "json", "csv": "csv", "tsv": "tsv"}
MODES = ("expanded", "condensed")
GZIP_LEVEL = 5  # measured: level 6 costs ~30% more time for ~3% smaller files on these records

# One output record: (meta.ts, meta.action or None for a snapshot, key, row or None if deleted).
Record = tuple[datetime, str | None, Any, tuple[Any, ...] | None]

_TSV_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "\x00": "\\0",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
    }
)


@functools.lru_cache(maxsize=64)  # a snapshot's rows all carry its ``at``
def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _tsv_text(value: str) -> str:
    # Most values need no escape: isprintable is false for every control character.
    return value if value.isprintable() and "\\" not in value else value.translate(_TSV_ESCAPES)


def _tsv_json(value: Any) -> str:
    return orjson.dumps(value).decode().translate(_TSV_ESCAPES)


# By exact type (bool before int would matter for isinstance; a dict lookup cannot confuse them).
_TSV_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: _tsv_text,
    int: str,
    bool: lambda value: "true" if value else "false",
    datetime: _timestamp,
    list: _tsv_json,
    dict: _tsv_json,
    type(None): lambda value: "\\N",
}


def tsv_field(value: Any) -> str:
    """One value as PostgreSQL COPY text format writes it (see the module docstring)."""
    encode = _TSV_BY_TYPE.get(type(value))
    return encode(value) if encode is not None else str(value)


def _csv_field(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return value


class Encoder:
    """Turns records of one table into the bytes of one format (before compression)."""

    def __init__(self, table: ExportedTable, file_format: str, *, incremental: bool) -> None:
        self.table = table
        self.format = file_format
        self.incremental = incremental
        self.key_name = table.key_column.name
        self.value_names = [column.name for column in table.columns[1:]]

    def header(self) -> bytes:
        if self.format == "jsonl":
            return b""
        names = ["meta.ts", *(["meta.action"] if self.incremental else [])]
        names += [f"key.{self.key_name}", *(f"value.{name}" for name in self.value_names)]
        if self.format == "tsv":
            return ("\t".join(names) + "\n").encode()
        return self._csv_lines([names])

    def encode(self, records: Iterable[Record]) -> bytes:
        if self.format == "jsonl":
            return b"".join(self._json_line(record) for record in records)
        if self.format == "tsv":
            return "".join(self._tsv_line(record) for record in records).encode()
        return self._csv_lines(self._csv_row(record) for record in records)

    def _json_line(self, record: Record) -> bytes:
        ts, action, key, row = record
        meta: dict[str, Any] = {"ts": ts} if action is None else {"ts": ts, "action": action}
        line: dict[str, Any] = {"meta": meta, "key": {self.key_name: key}}
        if row is not None:
            line["value"] = {
                name: value
                for name, value in zip(self.value_names, row[1:], strict=True)
                if value is not None
            }
        return orjson.dumps(line, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE)

    def _flat(self, record: Record) -> list[Any]:
        ts, action, key, row = record
        values = list(row[1:]) if row is not None else [None] * len(self.value_names)
        return [ts, *([action] if self.incremental else []), key, *values]

    def _tsv_line(self, record: Record) -> str:
        return "\t".join(tsv_field(value) for value in self._flat(record)) + "\n"

    def _csv_row(self, record: Record) -> list[Any]:
        return [_csv_field(value) for value in self._flat(record)]

    @staticmethod
    def _csv_lines(rows: Iterable[list[Any]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue().encode()


def gzip_compressor() -> Any:
    """A streaming compressor whose output is one gzip member (RFC 1952)."""
    return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
