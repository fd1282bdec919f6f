"""PHI stays protected (R12, issue "PHI protection"): after a full secure email with a
reply, nothing the office or the patient wrote can be read, byte for byte, in the
Temporal history, the database file, the stored objects or the logs."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.secure_email import workflow_id_for
from tests.fixtures.s3 import S3Server
from tests.fixtures.stack import Stack
from tests.fixtures.temporal import idle
from tests.fixtures.waiting import eventually
from tests.web.test_portal import sign_in

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TEMPORAL_CLI = Path(sys.executable).parent / "temporal"


def forms(secret: str) -> list[bytes]:
    """The secret as it could appear: raw, base64 (JSON payloads), hex."""
    raw = secret.encode()
    return [raw, base64.b64encode(raw), raw.hex().encode()]


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


async def test_no_phi_in_history_database_objects_or_logs(
    stack: Stack,
    s3_server: S3Server,
    dev_server_env: WorkflowEnvironment,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = secrets.token_hex(6)
    subject = f"Biopsy result {marker}"
    body = f"The lesion on your tongue is benign {marker}"
    reply_text = f"Thank you, relieved to hear it {marker}"
    office_file = f"%PDF-1.7\nlab report {marker}\n".encode() + secrets.token_bytes(4096)
    patient_file = b"\x89PNG\r\n\x1a\n" + f"insurance card {marker}".encode() * 50
    # File names are PHI too: a patient's name and a diagnosis.
    office_file_name = f"biopsy-jane-{marker}.pdf"
    patient_file_name = f"insurance-card-ada-{marker}.png"

    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    sent = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": subject, "body": body},
        files=[("attachments", (office_file_name, office_file, "application/pdf"))],
    )
    assert sent.status_code == 201
    secure_email_id = sent.json()["id"]
    link = await stack.notice_link("ada@example.com")
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        message = await patient.get(message_path)
        assert subject in message.text  # it is readable where it should be
        assert office_file_name in message.text
        replied = await patient.post(
            f"{message_path}/reply",
            data={"body": reply_text},
            files=[("attachments", (patient_file_name, patient_file, "image/png"))],
        )
        assert replied.status_code == 303

    async def filed() -> bool | None:
        chart = await stack.office.api.get(f"/api/v1/patients/{patient_id}/chart")
        return True if chart.json()["items"] else None

    await eventually(filed)
    chart = await stack.office.api.get(f"/api/v1/patients/{patient_id}/chart")
    assert [item["filename"] for item in chart.json()["items"]] == [patient_file_name]
    await idle(dev_server_env.client.get_workflow_handle(workflow_id_for(secure_email_id)))

    secrets_to_find = {
        "subject": forms(subject),
        "body": forms(body),
        "reply": forms(reply_text),
        "office file": [office_file[:64], office_file[-64:]],
        "patient file": [patient_file[-64:]],
        "office file name": forms(office_file_name),
        "patient file name": forms(patient_file_name),
        "marker": forms(marker),
    }

    def leaks(data: bytes) -> list[str]:
        return [name for name, found in secrets_to_find.items() if any(f in data for f in found)]

    # The Temporal history, as an operator's CLI shows it.
    history = subprocess.run(
        [
            str(TEMPORAL_CLI),
            "workflow",
            "show",
            "--address",
            dev_server_env.client.service_client.config.target_host,
            "--workflow-id",
            workflow_id_for(secure_email_id),
            "-o",
            "json",
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert json.loads(history)["events"], "no history read"
    assert leaks(history) == []

    # The database file (and its write-ahead log).
    database = Path(stack.settings.database_url.split(":///", 1)[1])
    database_files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    assert database_files
    for path in database_files:
        assert leaks(path.read_bytes()) == [], path

    # Every stored object.
    objects = files_under(s3_server.data_dir / stack.settings.s3_bucket)
    assert len(objects) == 2
    for path in objects:
        assert leaks(path.read_bytes()) == [], path

    # The logs: everything logged through Python and written to stdout/stderr.
    captured = capfd.readouterr()
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert leaks((logs + captured.out + captured.err).encode()) == []
