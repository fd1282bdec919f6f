"""Log lines for collectors: level, time, logger, message and ids; nothing a patient wrote."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from infra.logging import JsonFormatter, configure_logging
from infra.settings import Settings

PHI = "Jane Doe's crown hurts"


def record(message: str = "notice delivered", **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("activities.mail", logging.INFO, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    return made


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_line_has_level_time_logger_message() -> None:
    line = json.loads(JsonFormatter().format(record()))
    assert line["level"] == "INFO"
    assert line["logger"] == "activities.mail"
    assert line["message"] == "notice delivered"
    assert line["time"].endswith("+00:00")
    assert set(line) == {"time", "level", "logger", "message"}


def test_json_line_keeps_ids_drops_other_extras() -> None:
    line = json.loads(
        JsonFormatter().format(
            record(secure_email_id="se-1", patient_id="p-1", subject=PHI, email="jane@x.example")
        )
    )
    assert line["secure_email_id"] == "se-1" and line["patient_id"] == "p-1"
    assert "subject" not in line and "email" not in line
    assert PHI not in json.dumps(line)


def test_json_line_flattens_temporal_activity_ids() -> None:
    context = {
        "workflow_id": "secure-email-1",
        "workflow_run_id": "run-1",
        "activity_type": "deliver_notice",
        "attempt": 2,
        "heartbeat_details": PHI,
    }
    line = json.loads(JsonFormatter().format(record(temporal_activity=context)))
    assert line["workflow_id"] == "secure-email-1"
    assert line["workflow_run_id"] == "run-1"
    assert line["activity_type"] == "deliver_notice"
    assert line["attempt"] == 2
    assert PHI not in json.dumps(line)


def test_json_line_exception_type_and_stack_without_message() -> None:
    try:
        raise ValueError(f"refused for {PHI}")
    except ValueError:
        failed = record("delivery failed")
        failed.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(failed))
    assert line["exception"] == "ValueError"
    assert "test_json_line_exception_type_and_stack_without_message" in line["stack"]
    assert PHI not in json.dumps(line)


def test_log_format_defaults_text_in_development_json_in_production() -> None:
    assert Settings().log_format == "text"
    production = Settings(environment="production", s3_secret_key="not-the-dev-secret")
    assert production.log_format == "json"
    assert Settings(environment="production", s3_secret_key="x", log_format="text").log_format == (
        "text"
    )


def test_configure_logging_json_writes_one_object_a_line(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"))
    logging.getLogger("workers.worker").info(
        "worker polling task queue %s", "secure-email", extra={"practice_id": "pr-1"}
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(root_logger.handlers) == 1
    entry = json.loads(lines[-1])
    assert entry["message"] == "worker polling task queue secure-email"
    assert entry["practice_id"] == "pr-1"


def test_configure_logging_text_for_people(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings())
    logging.getLogger("web").warning("slow database")
    assert capsys.readouterr().err.strip().endswith("WARNING web slow database")
