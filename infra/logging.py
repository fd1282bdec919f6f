"""Log set-up for ``securemail web`` and ``securemail worker``: text or one JSON a line.

A JSON line carries the level, the time, the logger, the message and ids, never a
patient's words: a message is written by this project's code and names ids only, and
of what a record carries beside it (``extra=``, the Temporal SDK's workflow and activity
context) only the fields named in ``ID_FIELDS`` are kept. An exception is logged by type
and stack; its message, which may quote an address or a file name, is left out.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from infra.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

ID_FIELDS = frozenset(
    {
        "secure_email_id",
        "patient_id",
        "practice_id",
        "reply_id",
        "alert_id",
        "staff_id",
        "namespace",
        "task_queue",
        "workflow_id",
        "run_id",
        "workflow_run_id",
        "workflow_type",
        "activity_id",
        "activity_type",
        "attempt",
    }
)
# Where the Temporal SDK's loggers put the workflow's or activity's context.
_TEMPORAL_CONTEXT = ("temporal_workflow", "temporal_activity")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for context in _TEMPORAL_CONTEXT:
            values = fields.get(context)
            if isinstance(values, dict):
                entry.update({k: v for k, v in values.items() if k in ID_FIELDS})
        entry.update({k: v for k, v in fields.items() if k in ID_FIELDS})
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__qualname__
            entry["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """One handler on the root logger, on stderr; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
