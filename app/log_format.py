"""How the process logs: ``LOG_FORMAT=text`` (the default, lines for people) or ``json`` (one JSON object
per line, for a log collector; docs/operations.md#logs).

In JSON every record has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
``request_id`` of the request it was written for (when it was), and the fields the record carries (the
access line's route, status, duration, …). uvicorn's loggers go to the same handler; its own access log
is off, as the request observer (``app.api.observe``) writes one line per request instead.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "message"]
_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}
# the id of the request being served (set by ``app.api.observe``), for the log lines written meanwhile
request_id: ContextVar[str | None] = ContextVar("pyaichat_request_id", default=None)


class _WithRequestId(logging.Filter):
    """Adds the id of the request being served to a record written while it runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current is not None and not hasattr(record, "request_id"):
            record.request_id = current
        return True


def _utc_time(record: logging.LogRecord, datefmt: str | None = None) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def json_handler(stream: Any = None) -> logging.Handler:
    from pythonjsonlogger.json import JsonFormatter  # only for LOG_FORMAT=json: it costs a start 0.2 s

    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter(JSON_FIELDS, rename_fields=_RENAMED, json_ensure_ascii=False)
    formatter.formatTime = _utc_time  # type: ignore[method-assign]
    handler.setFormatter(formatter)
    handler.addFilter(_WithRequestId())
    return handler


def configure_logging(log_format: LogFormat = "text") -> dict[str, Any]:
    """Set up the root logger for ``log_format``; returns the options uvicorn then needs."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_format == "json":
        root.addHandler(json_handler())
        root.setLevel(logging.INFO)
    else:
        logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # app.migrate reports what it did
    if log_format == "json":
        # uvicorn's loggers propagate to the handler above; its access lines are the observer's
        return {"log_config": None, "access_log": False}
    return {}
