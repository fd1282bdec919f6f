"""The clinic each audit event is about (R13, R19), on the Audit page, in its export and
over ``/api/v1/audit``: a message's event names the clinic it was sent for, even after
its patient moved; a patient's event names the patient's clinic now; a practice-wide
event names none. Not stored in the hash-chained log: read when events are shown, in the
same one query as their names. A practice without clinics sees no Clinic column."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import update

from domain.audit import ActorType, AuditAction
from infra.audit import Actor, audit
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_api_clinics import add_clinic
from tests.web.test_audit_page import page_rows, statements_on
from tests.web.test_sent_box import add_patient, record_sent


async def message_for(
    settings: Settings, office: Office, patient_id: str, clinic_id: str | None
) -> str:
    """A secure email to the patient, recorded as sent for ``clinic_id``, with its send
    and a portal read in the log: its id."""
    sent = await record_sent(settings, office, patient_id, datetime.now(UTC))
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        await db.execute(
            update(SecureEmail).where(SecureEmail.id == sent.id).values(clinic_id=clinic_id)
        )
        for action, actor in (
            (AuditAction.SEND, Actor(ActorType.STAFF)),
            (AuditAction.VIEW, Actor(ActorType.PATIENT, patient_id)),
        ):
            audit(db, office.practice_id, action, actor,
                  patient_id=patient_id, secure_email_id=sent.id)  # fmt: skip
        await db.commit()
    await engine.dispose()
    return sent.id


async def move(office: Office, patient_id: str, clinic_id: str | None) -> None:
    moved = await office.api.patch(f"/api/v1/patients/{patient_id}", json={"clinic_id": clinic_id})
    assert moved.status_code == 200, moved.text


async def sent_by_another_practice(settings: Settings, other_office: Office) -> tuple[str, str]:
    """Another practice's patient, at its clinic "Their Clinic", and a secure email sent
    to them for it: their ids (patient, message), which this practice's log may name but
    never find a clinic for."""
    theirs = (await add_clinic(other_office, name="Their Clinic"))["id"]
    patient_id = await add_patient(other_office, "Zed Theirs")
    await move(other_office, patient_id, theirs)
    return patient_id, await message_for(settings, other_office, patient_id, theirs)


@dataclass(frozen=True)
class Seeded:
    downtown: str
    uptown: str
    ada: str  # sent a message for Downtown, then moved to Uptown
    grace: str  # sent a message for no clinic, then moved to Uptown
    lin: str  # of no clinic
    sent_downtown: str  # to Ada, for Downtown
    sent_nowhere: str  # to Grace, for no clinic


async def seed(settings: Settings, office: Office) -> Seeded:
    downtown = (await add_clinic(office))["id"]
    uptown = (await add_clinic(office, name="Uptown", sender_address="up@smile.example"))["id"]
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    await move(office, ada, downtown)
    sent_downtown = await message_for(settings, office, ada, downtown)
    sent_nowhere = await message_for(settings, office, grace, None)
    await move(office, ada, uptown)
    await move(office, grace, uptown)
    lin = await add_patient(office, "Lin Nobody")
    return Seeded(downtown, uptown, ada, grace, lin, sent_downtown, sent_nowhere)


async def test_audit_page_names_the_clinic_of_each_event(
    settings: Settings, office: Office
) -> None:
    seeded = await seed(settings, office)
    rows = await page_rows(office)
    assert all("Clinic" in row for row in rows)
    clinics_of: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        clinics_of.setdefault((row["Action"], row["Patient"][:3]), set()).add(row["Clinic"])
    # The message's events: the clinic it was sent for, though Ada is at Uptown now.
    assert clinics_of[("sent a secure email", "Ada")] == {"Downtown Clinic"}
    assert clinics_of[("read a secure email in the portal", "Ada")] == {"Downtown Clinic"}
    # A message sent for no clinic names none, though Grace is at Uptown now.
    assert clinics_of[("sent a secure email", "Gra")] == {""}
    assert clinics_of[("read a secure email in the portal", "Gra")] == {""}
    # The patient's events: her clinic now, for those of her Downtown days too.
    assert clinics_of[("added a patient", "Ada")] == {"Uptown"}
    assert clinics_of[("changed a patient", "Ada")] == {"Uptown"}
    assert clinics_of[("added a patient", "Gra")] == {"Uptown"}
    assert clinics_of[("added a patient", "Lin")] == {""}
    # Practice-wide: the clinics' own changes, log-ins, reading the log.
    assert clinics_of[("changed the practice settings", "")] == {""}
    assert clinics_of[("logged in", "")] == {""}
    page = await office.browser.get("/audit")
    assert '<th scope="col">Patient</th><th scope="col">Clinic</th>' in page.text

    # Filtered down to nothing, the table keeps its columns.
    empty = await office.browser.get("/audit", params={"action": "portal.download"})
    assert '<td colspan="8">No events.</td>' in empty.text
    # The secure email's filter: its events alone, each naming Downtown.
    rows = await page_rows(office, secure_email_id=seeded.sent_downtown)
    assert [row["Clinic"] for row in rows] == ["Downtown Clinic", "Downtown Clinic"]


async def test_audit_export_and_api_carry_the_clinic(settings: Settings, office: Office) -> None:
    seeded = await seed(settings, office)
    exported = await office.browser.get("/audit.csv")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert list(rows[0])[-1] == "clinic"
    by_message = {
        (row["action"], row["secure_email_id"]): row["clinic"]
        for row in rows
        if row["secure_email_id"]
    }
    assert by_message == {
        (AuditAction.SEND.value, seeded.sent_downtown): "Downtown Clinic",
        (AuditAction.VIEW.value, seeded.sent_downtown): "Downtown Clinic",
        (AuditAction.SEND.value, seeded.sent_nowhere): "",
        (AuditAction.VIEW.value, seeded.sent_nowhere): "",
    }
    edits = {row["clinic"] for row in rows if row["action"] == AuditAction.PATIENT_EDIT.value
             and row["patient_id"] == seeded.ada}  # fmt: skip
    assert edits == {"Uptown"}
    settings_rows = [row for row in rows if row["action"] == AuditAction.SETTINGS_CHANGE.value]
    assert len(settings_rows) == 2 and {row["clinic"] for row in settings_rows} == {""}

    events = await office.audit_events()
    assert all("clinic_id" in event for event in events)
    about = {
        (event["action"], event["secure_email_id"] or event["patient_id"]): event["clinic_id"]
        for event in events
    }
    assert about[(AuditAction.SEND.value, seeded.sent_downtown)] == seeded.downtown
    assert about[(AuditAction.VIEW.value, seeded.sent_downtown)] == seeded.downtown
    assert about[(AuditAction.SEND.value, seeded.sent_nowhere)] is None
    assert about[(AuditAction.PATIENT_ADD.value, seeded.ada)] == seeded.uptown
    assert about[(AuditAction.PATIENT_ADD.value, seeded.grace)] == seeded.uptown
    assert about[(AuditAction.PATIENT_ADD.value, seeded.lin)] is None
    assert {e["clinic_id"] for e in events if e["action"] == "office.settings_change"} == {None}
    assert {e["clinic_id"] for e in events if e["action"] == "staff.log_in"} == {None}


async def test_audit_clinic_of_another_practice_is_never_named(
    settings: Settings, office: Office, other_office: Office
) -> None:
    await add_clinic(office)
    their_patient, their_message = await sent_by_another_practice(settings, other_office)
    # Their ids in this practice's log (a forged or mistaken event): no clinic.
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        audit(db, office.practice_id, AuditAction.OFFICE_VIEW, Actor(ActorType.STAFF),
              patient_id=their_patient, secure_email_id=their_message)  # fmt: skip
        audit(db, office.practice_id, AuditAction.OFFICE_PATIENT_VIEW, Actor(ActorType.STAFF),
              patient_id=their_patient)  # fmt: skip
        await db.commit()
    await engine.dispose()
    rows = await page_rows(office)
    assert {row["Clinic"] for row in rows} == {""}
    exported = await office.browser.get("/audit.csv")
    assert "Their Clinic" not in exported.text
    events = await office.audit_events()
    assert {event["clinic_id"] for event in events} == {None}


async def test_audit_without_clinics_shows_no_clinic_column(
    settings: Settings, office: Office, other_office: Office
) -> None:
    # Another practice's clinics change nothing here.
    await add_clinic(other_office)
    ada = await add_patient(office, "Ada Lovelace")
    await message_for(settings, office, ada, None)
    page = await office.browser.get("/audit")
    assert page.status_code == 200
    assert "Clinic" not in page.text
    assert all("Clinic" not in row for row in await page_rows(office))
    empty = await office.browser.get("/audit", params={"action": "portal.download"})
    assert '<td colspan="7">No events.</td>' in empty.text
    assert {event["clinic_id"] for event in await office.audit_events()} == {None}


def reads_of(statements: list[str], table: str) -> int:
    return sum(
        1
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
        and re.search(rf"\b{table}\b", sql)
        and "audit_events" not in sql
    )


async def test_audit_clinics_read_in_one_query(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    await seed(settings, office)
    for n in range(4):
        patient = await add_patient(office, f"Patient {n}")
        await message_for(settings, office, patient, None)
    with statements_on(app) as page:
        assert (await office.browser.get("/audit")).status_code == 200
    with statements_on(app) as export:
        assert (await office.browser.get("/audit.csv")).status_code == 200
    with statements_on(app) as api:
        assert (await office.api.get("/api/v1/audit")).status_code == 200
    # One read of the messages' clinics, whatever the number of messages, each time.
    assert reads_of(page, "secure_emails") == 1
    assert reads_of(export, "secure_emails") == 1
    assert reads_of(api, "secure_emails") == 1
    assert reads_of(api, "clinics") == 0  # the API answers with ids: no names to read


async def test_audit_schema_documents_the_clinic(office: Office) -> None:
    schema = (await office.api.get("/openapi.json")).json()
    event = schema["components"]["schemas"]["AuditEventPublic"]
    clinic = event["properties"]["clinic_id"]
    assert "secure email was sent for" in clinic["description"]
    assert {"type": "null"} in clinic["anyOf"]
