"""Logging: one line per record, JSON or text, every line of a request carrying its id, and
secrets masked on the way out.

``config(settings)`` is one ``logging.config.dictConfig`` dictionary for the ``lmsauth serve``
process, its uvicorn workers (uvicorn's ``log_config``) and uvicorn's own loggers. uvicorn's
access log is switched off: it prints the raw path with its query (``?code=...``), so
``core.observe`` writes the access line instead, with the route template only.

Nothing is supposed to log a secret in the first place; ``RedactSecrets`` is the second line
of defence, masking whatever still looks like one (a bearer or basic credential, a JWT,
``code=``, ``refresh_token=``, ``client_secret=``, ``password=`` values and the like) in the
message, the exception text and any extra field.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any, Literal

REQUEST_ID: ContextVar[str | None] = ContextVar("lmsauth_request_id", default=None)
"""The id of the request being served (``core.observe`` sets it), or None outside requests."""

LogFormat = Literal["json", "text"]

_SECRET_NAMES = (
    r"access_token|refresh_token|id_token|jwt_token|code_verifier|code|client_secret|shared_secret"
    r"|secret|password|passwd|authenticity_token|custom_csrf_token|csrf_token|oauth_signature"
    r"|session-id|session_id|sessionid|canvas_session|session|state|token"
)
# A name not glued to a longer word (``status_code=`` stays), also inside ``pseudonym_session[...]``
# whether or not the brackets are percent-encoded.
_NAME_START = r"(?:(?<=%5B)|(?<=%5b)|(?<![A-Za-z0-9_-]))"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # 16 characters at least: "HTTP Basic credentials are missing" is prose, not a credential.
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1\2***"),
    (
        re.compile(
            r"(?i)\b(x-session-id|x-instauth|authorization|cookie|set-cookie)(['\"]?\s*[:,]\s*(?-i:b)?['\"]?)[^\s'\",;]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "***"),
    (
        re.compile(rf"(?i){_NAME_START}((?:{_SECRET_NAMES})(?:\]|%5D)?)(\s*(?:=|%3D)\s*)[^&\s\"',;)\]}}]+"),
        r"\1\2***",
    ),
    (
        re.compile(rf"(?i)([\"']{_NAME_START}(?:{_SECRET_NAMES})[\"']\s*:\s*[\"'])[^\"']*"),
        r"\1***",
    ),
)
# Not extra fields: the record's own, and uvicorn's copy of its message with terminal colours.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


def redact(text: str) -> str:
    """``text`` with every value that looks like a credential replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {name: value for name, value in record.__dict__.items() if name not in _STANDARD}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was logged in (``request_id``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


_EXCEPTIONS = logging.Formatter()


ACCESS_LOGGER = "lmsauth.access"


class RedactSecrets(logging.Filter):
    """Masks credentials in the formatted message, the exception text and string extras.

    The access line (``ACCESS_LOGGER``) is let through as it is: ``core.observe`` builds it
    from values that cannot hold a secret (a known method, a route template, a status, a
    validated request id, the peer's address), and it is the one line written per request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == ACCESS_LOGGER:
            return True
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTIONS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, name, redact(value))
        return True


_second: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds; the part up to the second is formatted once a second."""
    global _second
    whole = int(record.created)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((record.created - whole) * 1000):03d}Z"


_ENCODER = json.JSONEncoder(default=str)  # json.dumps(default=...) would build one per line
_quote = encode_basestring_ascii  # a JSON string literal, escaped to ASCII


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``request_id``,
    the record's extra fields, and ``exception`` when there is one. Escaped to ASCII, so no
    character in a message can end the line early."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == ACCESS_LOGGER and getattr(record, "duration_ms", None) is not None:
            return _access_line(record)
        data: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        data.update(_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return _ENCODER.encode(data)


def _access_line(record: logging.LogRecord) -> str:
    """``JsonFormatter``'s line for ``core.observe``'s access record, written straight: it is
    the one line of every request, and its fields are known (a third of the generic cost)."""
    fields = record.__dict__
    client = fields.get("client_ip")
    return (
        f'{{"time": "{_timestamp(record)}", "level": "{record.levelname.lower()}", '
        f'"logger": "{ACCESS_LOGGER}", '
        f'"message": {_quote(record.getMessage())}, "request_id": {_quote(str(fields["request_id"]))}, '
        f'"method": {_quote(str(fields["method"]))}, "route": {_quote(str(fields["route"]))}, '
        f'"status": {int(fields["status"])}, "duration_ms": {float(fields["duration_ms"])}, '
        f'"client_ip": {_quote(str(client)) if client is not None else "null"}}}'
    )


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message``, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}"
        line += f" [{request_id}] " if request_id else " "
        line += record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def resolve_format(setting: str) -> LogFormat:
    """``auto``: text when stderr is a terminal (a person is reading), JSON otherwise (a
    container, systemd, a log shipper)."""
    if setting == "auto":
        return "text" if sys.stderr.isatty() else "json"
    if setting not in ("json", "text"):
        raise ValueError(f"unknown log format {setting!r}: choose auto, json or text")
    return "json" if setting == "json" else "text"


def config(level: str = "info", log_format: str = "auto") -> dict[str, Any]:
    """The ``dictConfig`` of a serving process (also uvicorn's ``log_config``)."""
    level = level.upper()
    chosen = resolve_format(log_format)
    formatter = JsonFormatter if chosen == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": f"{__name__}.RequestIdFilter"},
            "redact": {"()": f"{__name__}.RedactSecrets"},
        },
        "formatters": {"main": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["request_id", "redact"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # Replaced by core.observe's access line: uvicorn's prints the query string.
            "uvicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            # Alembic says which dialect it uses at every start: not news.
            "alembic": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }
