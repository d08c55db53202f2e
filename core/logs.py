"""Log formats (text, or one-line JSON with OM_LOG_FORMAT=json) and the request id every line
logged during a request carries."""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
import uuid
from datetime import UTC, datetime

#: The id of the request this thread (or task) is serving; None outside requests. Set and
#: reset by observability's middleware, read by RequestIdFilter.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "om_request_id", default=None
)

# An incoming X-Request-ID (from a proxy or the client) is kept only if it cannot break a log
# line or a header: short, printable, no spaces or quotes.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")

#: Attributes of the request log line copied into its JSON object.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")


def accept_request_id(incoming: str | None) -> str:
    """The caller's id when it is sane, else a new random one."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` attribute (None outside requests); on the handler,
    so records of every logger (Django's, libraries') get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """Human-readable lines; the request id in brackets when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the request
    fields when the record has them, and the traceback (as one string) of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for field in REQUEST_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a message argument that JSON cannot hold must not lose the line.
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(*, fmt: str, level: str) -> dict:
    """The LOGGING dict for settings: one console handler in the chosen format."""
    formatter = "core.logs.JsonFormatter" if fmt == "json" else "core.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "core.logs.RequestIdFilter"}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["request_id"],
                "formatter": "default",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            "celery": {"level": "WARNING"},
        },
    }


def configure(config: dict) -> None:
    """settings.LOGGING_CONFIG: applies the dict, and sends Python warnings through logging,
    so that they too come out in the chosen format (a raw line would break JSON logs)."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
