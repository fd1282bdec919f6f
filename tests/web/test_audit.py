"""The audit trail (R13): every action of one secure email's life, in order, without PHI."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from temporalio.testing import ActivityEnvironment

from activities.read_model import ReadModelActivities
from domain.audit import ActorType, AuditAction
from domain.secure_email import SecureEmailStatus
from infra.accounts import create_api_token, create_staff_user
from infra.audit import Actor, audit
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Practice
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.stack import Stack
from tests.fixtures.temporal import status_change_now

SUBJECT = "Periodontal chart"
BODY = "Pocket depths attached."


async def test_audit_tells_the_story_of_a_message(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    secure_email_id = await stack.send_secure(
        patient_id, SUBJECT, BODY, [("chart.pdf", b"%PDF-1.4\n", "application/pdf")]
    )
    link = await stack.notice_link("ada@example.com")
    attachment_id = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()[
        "attachments"
    ][0]["id"]
    async with stack.browser() as patient:
        await patient.post(f"{link}/passcode")
        passcode = await stack.passcode("ada@example.com", 2)
        await patient.post(f"{link}/verify", data={"passcode": "00000000"})
        await patient.post(f"{link}/verify", data={"passcode": passcode})
        await patient.get(f"/portal/messages/{secure_email_id}")
        await patient.get(f"/portal/messages/{secure_email_id}/attachments/{attachment_id}")
        await patient.post("/portal/sign-out")

    events = await stack.office.audit_events(secure_email_id=secure_email_id)
    actions = [event["action"] for event in events]
    # The workflow records the notice's delivery on its own schedule; everything else
    # happens in the order the office and the patient did it.
    assert actions.count("secure_email.notice_delivered") == 1
    actions.remove("secure_email.notice_delivered")
    assert actions == [
        "secure_email.send",
        "office.view",  # the office read it back through the API
        "portal.passcode_issued",
        "portal.verify_failed",
        "portal.verify_ok",
        "portal.sign_in",
        "portal.view",
        "portal.download",
    ]
    by_action = {event["action"]: event for event in events}
    assert by_action["secure_email.send"]["actor_type"] == "staff"
    assert by_action["secure_email.notice_delivered"]["actor_type"] == "system"
    assert by_action["portal.view"]["actor_type"] == "patient"
    assert by_action["portal.view"]["client_address"]
    everything = await stack.office.audit_events()
    assert [e["action"] for e in everything][0] == "staff.log_in"
    assert everything[-1]["action"] == "portal.sign_out"
    dump = str(everything)
    assert SUBJECT not in dump and BODY not in dump and "chart.pdf" not in dump

    page = await stack.office.browser.get("/audit", params={"secure_email_id": secure_email_id})
    assert page.status_code == 200 and "downloaded a file in the portal" in page.text
    exported = await stack.office.browser.get("/audit.csv", params={"action": "portal.view"})
    assert exported.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["action"] for row in rows] == ["portal.view"]


async def test_audit_expiry_recorded_once(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    sent = await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "S", "body": "B"}
    )
    secure_email_id = sent.json()["id"]
    await stack.notice_link("ada@example.com")
    engine = make_engine(stack.settings.database_url)
    activities = ReadModelActivities(make_sessionmaker(engine))
    expiry = status_change_now(secure_email_id, SecureEmailStatus.EXPIRED)
    # A retried activity writes the change and its audit event once.
    for _ in range(2):
        await ActivityEnvironment().run(activities.record_status, expiry)
    await engine.dispose()
    events = await stack.office.audit_events(action="secure_email.expired")
    assert [e["secure_email_id"] for e in events] == [secure_email_id]


async def test_audit_requires_admin(stack: Stack) -> None:
    engine = make_engine(stack.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        practice = await db.get(Practice, stack.office.practice_id)
        assert practice is not None
        clerk = await create_staff_user(
            db, practice, "clerk@smile-dental.example", "pw-long-enough"
        )
        token = await create_api_token(db, clerk, "clerk")
        await db.commit()
    await engine.dispose()
    async with stack.browser() as client:
        response = await client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403
        assert (await client.get("/api/v1/audit")).status_code == 401
    bad = await stack.office.api.get("/api/v1/audit", params={"action": "shred"})
    assert bad.status_code == 422


async def test_audit_log_is_append_only(stack: Stack) -> None:
    await asyncio.sleep(0)
    engine = make_engine(stack.settings.database_url)
    for statement in ("UPDATE audit_events SET detail = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text(statement))
    await engine.dispose()
    assert await stack.office.audit_events()


FORMULAS = {
    "client_address": '=HYPERLINK("https://evil.example","Click")',
    "detail": "@SUM(1+1)",
    "actor_id": "+1",
    "patient_id": "-2+3",
    "secure_email_id": "\t=cmd",
}


async def test_csv_export_opens_every_cell_as_text(office: Office, settings: Settings) -> None:
    """A spreadsheet would run a cell that starts with =, +, -, @, tab or CR (OWASP)."""
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        audit(
            db,
            office.practice_id,
            AuditAction.OFFICE_VIEW,
            Actor(ActorType.STAFF, FORMULAS["actor_id"], FORMULAS["client_address"]),
            patient_id=FORMULAS["patient_id"],
            secure_email_id=FORMULAS["secure_email_id"],
            detail=FORMULAS["detail"],
        )
        audit(db, office.practice_id, AuditAction.OFFICE_VIEW, Actor(ActorType.STAFF), detail="\rx")
        await db.commit()
    await engine.dispose()
    exported = await office.browser.get("/audit.csv", params={"action": "office.view"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert len(rows) == 2
    for column, value in FORMULAS.items():
        assert rows[0][column] == "'" + value
    assert rows[1]["detail"] == "'\rx"
    # Cells that are safe stay as they were.
    assert rows[0]["action"] == "office.view" and rows[0]["at"][0].isdigit()
