"""The Audit page and its export in words (R13): staff and patients by name beside their
ids, actions as phrases, a patient chosen from a list by name; names of the practice's
own people only, read in one query; and reading the page is itself audited."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event

from domain.audit import ActorType, AuditAction
from infra.accounts import create_practice, create_staff_user
from infra.audit import Actor, audit
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Patient
from infra.settings import Settings
from tests.conftest import STAFF_PASSWORD, Office
from tests.web.test_sent_box import add_patient
from tests.web.test_staff import add_member
from web.office.audit import COLUMNS


class _Rows(HTMLParser):
    """The text of each cell of the page's audit table, row by row, by column label."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._label: str | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append({})
        elif tag == "td" and self._in_body:
            self._label = dict(attrs).get("data-label") or ""
            self.rows[-1][self._label] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._label = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self.rows[-1][self._label] += data


def rows_of(html: str) -> list[dict[str, str]]:
    parser = _Rows()
    parser.feed(html)
    return [{k: " ".join(v.split()) for k, v in row.items()} for row in parser.rows]


async def page_rows(office: Office, **query: str) -> list[dict[str, str]]:
    page = await office.browser.get("/audit", params=query)
    assert page.status_code == 200, page.text
    return rows_of(page.text)


async def admin_id(office: Office) -> str:
    log_ins = await office.audit_events(action=AuditAction.STAFF_LOG_IN.value)
    return str(log_ins[0]["actor_id"])


async def strangers(settings: Settings) -> tuple[str, str]:
    """A staff member and a patient of another practice, each with a name of their own."""
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        elsewhere = await create_practice(db, "Other Dental")
        stranger = await create_staff_user(
            db,
            elsewhere,
            f"s-{uuid.uuid4().hex[:6]}@other.example",
            STAFF_PASSWORD,
            name="Mallory Stranger",
        )
        patient = Patient(
            practice_id=elsewhere.id,
            name="Eve Elsewhere",
            email="eve@other.example",
            email_normalised="eve@other.example",
            status="Patient",
        )
        db.add(patient)
        await db.commit()
        ids = (stranger.id, patient.id)
    await engine.dispose()
    return ids


async def record(settings: Settings, practice_id: str, action: AuditAction, actor: Actor,
                 patient_id: str | None = None) -> None:  # fmt: skip
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        audit(db, practice_id, action, actor, patient_id=patient_id)
        await db.commit()
    await engine.dispose()


async def test_audit_page_names_staff_and_patients_and_says_actions(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    ana = await add_member(app, settings, office.practice_id, name="Ana Lopez")
    ada = await add_patient(office, "Ada Lovelace")
    searched = await office.browser.post("/patients/search", data={"q": "Ada"})
    assert searched.status_code == 200
    rows = await page_rows(office)

    by_phrase = {row["Action"]: row for row in rows}
    log_ins = {row["Who"] for row in rows if row["Action"] == "logged in"}
    assert log_ins == {
        f"Office admin (staff {(await admin_id(office))[:8]})",
        f"Ana Lopez (staff {ana.id[:8]})",
    }
    assert by_phrase["added a patient"]["Patient"] == f"Ada Lovelace (patient {ada[:8]})"
    assert by_phrase["searched patients"]["Who"].startswith("Office admin (staff ")
    # No code is shown where words belong, and each date is one line of text.
    for row in rows:
        assert not re.fullmatch(r"[a-z_]+\.[a-z_]+", row["Action"]), row
        assert "\n" not in row["When"]
    page = await office.browser.get("/audit")
    assert re.search(r'<td data-label="When" class="when"><time datetime=', page.text)


async def test_audit_page_never_names_another_practices_people(
    settings: Settings, office: Office
) -> None:
    stranger_id, their_patient = await strangers(settings)
    # Ids of another practice's people in this practice's log (an operator's, a forged
    # or mistaken one): shown, never named.
    await record(
        settings,
        office.practice_id,
        AuditAction.OFFICE_PATIENT_VIEW,
        Actor(ActorType.STAFF, stranger_id),
        patient_id=their_patient,
    )
    await record(settings, office.practice_id, AuditAction.OPERATOR_DECODE,
                 Actor(ActorType.OPERATOR, stranger_id))  # fmt: skip
    rows = await page_rows(office, action=AuditAction.OFFICE_PATIENT_VIEW.value)
    assert [(row["Who"], row["Patient"]) for row in rows] == [
        (f"staff {stranger_id[:8]}", f"patient {their_patient[:8]}")
    ]
    rows = await page_rows(office, action=AuditAction.OPERATOR_DECODE.value)
    assert [row["Who"] for row in rows] == [f"operator {stranger_id[:8]}"]
    page = await office.browser.get("/audit")
    assert "Mallory" not in page.text and "Eve Elsewhere" not in page.text
    exported = await office.browser.get("/audit.csv")
    assert "Mallory" not in exported.text and "Eve Elsewhere" not in exported.text


@contextmanager
def statements_on(app: FastAPI) -> Iterator[list[str]]:
    """The SQL the app runs while the block runs."""
    seen: list[str] = []
    engine = app.state.app_state.engine.sync_engine

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def name_reads(statements: list[str]) -> int:
    return sum(
        1
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
        and ("staff_users" in sql or "patients" in sql)
        and "audit_events" not in sql
    )


async def test_audit_page_reads_names_in_one_query(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    await add_patient(office, "Ada Lovelace")
    with statements_on(app) as few:
        assert (await office.browser.get("/audit")).status_code == 200
    for n in range(6):
        member = await add_member(app, settings, office.practice_id, name=f"Clerk {n}")
        await add_patient(office, f"Patient {n}")
        await member.browser.aclose()
        await member.api.aclose()
    with statements_on(app) as many:
        page = await office.browser.get("/audit")
    assert "Clerk 5 (staff " in page.text and "Patient 5 (patient " in page.text
    # The same reads for seven names as for one: the session's, the picker's, the names'.
    assert name_reads(many) == name_reads(few)


async def test_audit_page_filters_by_a_patient_chosen_by_name(
    settings: Settings, office: Office, other_office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    theirs = await add_patient(other_office, "Zed Theirs")
    page = await office.browser.get("/audit")
    picker = re.search(r'<select id="patient_id" name="patient_id">(.*?)</select>', page.text, re.S)
    assert picker is not None
    options = re.findall(r'<option value="([^"]*)"\s*>([^<]*)</option>', picker.group(1))
    assert options == [("", "Any patient"), (ada, "Ada Lovelace"), (grace, "Grace Hopper")]
    assert theirs not in page.text

    chosen = await office.browser.get("/audit", params={"patient_id": grace})
    assert re.search(rf'<option value="{grace}" selected>Grace Hopper</option>', chosen.text)
    rows = rows_of(chosen.text)
    # Her events, and the lists that showed her (by id, in their detail).
    assert [row["Action"] for row in rows if row["Patient"]] == ["added a patient"]
    assert {row["Patient"] for row in rows} <= {f"Grace Hopper (patient {grace[:8]})", ""}
    assert all(grace in row["Detail"] for row in rows if not row["Patient"])
    # A patient of another practice chosen by a hand-made URL: nothing of theirs is shown,
    # and the picker keeps the choice by its id alone.
    foreign = await office.browser.get("/audit", params={"patient_id": theirs})
    assert rows_of(foreign.text) == [{"": "No events."}]
    assert f'<option value="{theirs}" selected>patient {theirs[:8]}</option>' in foreign.text
    assert "Zed" not in foreign.text


async def test_audit_export_keeps_codes_and_adds_words(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    ana = await add_member(app, settings, office.practice_id, name="Ana Lopez")
    ada = await add_patient(office, "Ada Lovelace")
    await record(settings, office.practice_id, AuditAction.OFFICE_PATIENT_VIEW,
                 Actor(ActorType.STAFF, ana.id), patient_id=ada)  # fmt: skip
    await record(settings, office.practice_id, AuditAction.VIEW,
                 Actor(ActorType.PATIENT, ada), patient_id=ada)  # fmt: skip
    exported = await office.browser.get("/audit.csv")
    assert exported.status_code == 200
    reader = csv.DictReader(io.StringIO(exported.text, newline=""))
    assert reader.fieldnames == [
        *COLUMNS,
        "action_phrase",
        "actor_name",
        "patient_name",
        "clinic",
    ]
    rows = {row["action"]: row for row in reader}
    # A practice without clinics: the column is there, every cell empty.
    assert {row["clinic"] for row in rows.values()} == {""}
    viewed = rows[AuditAction.OFFICE_PATIENT_VIEW.value]
    assert (viewed["actor_type"], viewed["actor_id"], viewed["patient_id"]) == (
        "staff",
        ana.id,
        ada,
    )
    assert viewed["action_phrase"] == "viewed a patient's name and address"
    assert (viewed["actor_name"], viewed["patient_name"]) == ("Ana Lopez", "Ada Lovelace")
    read = rows[AuditAction.VIEW.value]
    assert (read["actor_name"], read["action_phrase"]) == (
        "Ada Lovelace",
        "read a secure email in the portal",
    )
    added = rows[AuditAction.PATIENT_ADD.value]
    assert (added["actor_name"], added["patient_name"]) == ("Office admin", "Ada Lovelace")


async def test_reading_the_audit_log_is_audited(settings: Settings, office: Office) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    assert (await office.browser.get("/audit", params={"patient_id": ada})).status_code == 200
    assert (await office.browser.get("/audit.csv")).status_code == 200
    reads = await office.audit_events(action=AuditAction.OFFICE_AUDIT_READ.value)
    assert len(reads) == 2
    page, export = reads
    assert page["actor_type"] == "staff" and page["actor_id"] == await admin_id(office)
    assert page["patient_id"] == ada
    # The patients the page named, by id; the picker by count.
    assert page["detail"].endswith(f"2 patient(s) to choose from; patients: {ada}")
    assert export["detail"].startswith("4 event(s) exported; patients: ")
    assert ada in export["detail"] and grace in export["detail"]
    assert "Ada" not in str(reads) and "Grace" not in str(reads)
