"""Logs of the HTTP service: request ids, one structured line per request, and the logging setup of `qa serve`.

A line is JSON (one object per line, for log collectors) or ``key=value`` text (for people at a terminal);
``QA_LOG_FORMAT=auto`` picks JSON unless standard error is a terminal. The fields of a request's line are
gathered in its ASGI scope (``fields(scope)``): the telemetry middleware sets the request's, a route may
add its own (``note_search``). A question is written only when ``QA_LOG_QUESTIONS`` says so, and nothing
logs headers, so the API key never reaches a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.types import Scope

from qa.config import Settings

ACCESS_LOGGER = "qa.access"
REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it could not hurt a log line or a header: 1-128 characters of letters,
# digits and ._:+/=- (UUIDs, hex, base64, "req-42"); anything else is replaced by a fresh id.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
_SCOPE_KEY = "qa.log"


def new_request_id() -> str:
    """A fresh request id: 32 hex digits (a random UUID)."""
    return uuid.uuid4().hex


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is one sane value, otherwise a new id."""
    values = [value for name, value in headers if name.lower() == b"x-request-id"]
    if len(values) == 1:
        try:
            candidate = values[0].decode("ascii")
        except UnicodeDecodeError:
            candidate = ""
        if _REQUEST_ID_RE.fullmatch(candidate):
            return candidate
    return new_request_id()


def fields(scope: Scope) -> dict:
    """The log fields of the request ``scope`` belongs to (a dict the caller may add to)."""
    return scope.setdefault(_SCOPE_KEY, {})


def note_search(request: Request, question: str | None = None, **values: object) -> None:
    """Add a search's fields (mode, top_k, results, answerable, ...) to its request's log line.

    ``question`` is recorded only when the service is configured to log questions (``log_questions``).
    """
    line = fields(request.scope)
    line.update({k: v for k, v in values.items() if v is not None})
    settings: Settings = request.app.state.settings
    if question is not None and settings.log_questions:
        line["question"] = question[: settings.max_question_chars]


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, then the record's ``qa_fields``."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "qa_fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger: message key=value ...`` on one line, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={_plain(v)}" for k, v in (getattr(record, "qa_fields", None) or {}).items())
        text = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        text = f"{text} {extra}" if extra else text
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def _plain(value: object) -> str:
    """A value for ``key=value``: bare when unambiguous, JSON-quoted when it is empty or holds spaces or quotes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def resolve_format(log_format: str, stream=None) -> str:
    """``json`` or ``text``: ``auto`` is text on a terminal and JSON otherwise."""
    if log_format != "auto":
        return log_format
    stream = sys.stderr if stream is None else stream
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


def log_config(settings: Settings) -> dict:
    """A ``logging.config.dictConfig`` for `qa serve`: the request log and uvicorn's own, one format, stderr.

    Passed to uvicorn as ``log_config``; uvicorn's access log is switched off separately (``access_log=False``)
    because the request log replaces it.
    """
    formatter = JSONFormatter if resolve_format(settings.log_format) == "json" else TextFormatter
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"qa": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "qa", "stream": "ext://sys.stderr"}},
        "loggers": {
            "qa": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        # Libraries' warnings (faiss, torch, ...) come out in the same format rather than as bare text.
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
