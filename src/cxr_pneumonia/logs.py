"""Log lines for every door: text for a terminal, or CXR_LOG_FORMAT=json (one object a line) for a
log shipper. Fields: time, level, logger, message, and when known request_id (the HTTP request's id,
or the DICOM job's), route, status, duration_ms and model_version.

Nothing here adds a patient identifier: the doors log ids, routes, labels and timings, never a file
name, a DICOM header value or an uploaded byte (tests/test_logs_phi.py checks it end to end).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

# The request (or DICOM job) being served in this thread or task: every line logged meanwhile names it.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("cxr_request_id", default=None)
FIELDS = ("request_id", "route", "method", "status", "duration_ms", "model_version")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def request_scope(request_id: str) -> Iterator[None]:
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str, fmt: str) -> None:
    """Replace the root handlers with one on stderr in ``fmt`` ("text" or "json")."""
    if fmt not in ("text", "json"):
        raise ValueError(f"CXR_LOG_FORMAT is text or json, not {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # theirs go through ours
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
