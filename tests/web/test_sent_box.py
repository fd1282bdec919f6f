"""The Sent box (R15): a practice's secure emails newest first, filtered and a
page at a time by keyset, over ``GET /api/v1/secure-emails`` and the Email Client's Sent
tab. Rows are written as the web app and the workflow leave them, so no Temporal is
needed; every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from domain.audit import AuditAction
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Patient, SecureEmail, StaffUser
from infra.replies import Written, add_to_thread
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_staff import add_member

BASE = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
BODY = "Your crown is ready; the lab sent it back today."


@dataclass
class Sent:
    id: str
    patient_id: str
    subject: str
    sent_at: datetime


async def add_patient(office: Office, name: str) -> str:
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:6]}@example.com"
    added = await office.api.post("/api/v1/patients", json={"name": name, "email": email})
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


async def record_sent(
    settings: Settings,
    office: Office,
    patient_id: str,
    sent_at: datetime,
    *,
    subject: str = "Treatment plan",
    status: str = "sent",
    replies: int = 0,
    opened_at: datetime | None = None,
) -> Sent:
    """A secure email as its workflow leaves it in the read model, with ``replies``."""
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        staff_id = await db.scalar(select(StaffUser.id).where(StaffUser.email == office.email))
        assert staff_id is not None
        secure_email = SecureEmail(
            practice_id=office.practice_id,
            patient_id=patient_id,
            staff_id=staff_id,
            subject=subject,
            body=BODY,
            link_token_hash=secrets.token_hex(32),
            status=status,
            status_sequence=1,
            sent_at=sent_at,
            expires_at=sent_at + timedelta(days=7),
            opened_at=opened_at,
        )
        db.add(secure_email)
        await db.flush()
        for n in range(replies):
            # As the workflow's record_reply does: the thread's counters with the reply.
            await add_to_thread(
                db,
                secure_email,
                str(uuid.uuid4()),
                Written(f"RE: {subject}", f"Reply {n}", []),
                sent_at + timedelta(hours=n + 1),
            )
        await db.commit()
        sent = Sent(secure_email.id, patient_id, subject, sent_at)
    await engine.dispose()
    return sent


async def listed(office: Office, **query: Any) -> dict[str, Any]:
    response = await office.api.get("/api/v1/secure-emails", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def fields_refused(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    return {str(item["loc"][-1]) for item in response.json()["detail"]}


# API ------------------------------------------------------------------------------------


async def test_api_lists_newest_first_without_bodies(settings: Settings, office: Office) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    older = await record_sent(settings, office, ada, BASE, subject="Cleaning")
    opened = BASE + timedelta(days=1, hours=2)
    newer = await record_sent(
        settings, office, ada, BASE + timedelta(days=1), status="replied", replies=2,
        opened_at=opened,
    )  # fmt: skip
    page = await listed(office)
    assert ids(page) == [newer.id, older.id] and page["next_cursor"] is None
    first = page["items"][0]
    assert set(first) == {
        "id", "patient_id", "subject", "status", "sent_at", "expires_at", "opened_at",
        "reply_count",
    }  # fmt: skip
    assert first["patient_id"] == ada and first["subject"] == "Treatment plan"
    assert first["status"] == "replied" and first["reply_count"] == 2
    assert datetime.fromisoformat(first["sent_at"]) == newer.sent_at
    assert datetime.fromisoformat(first["opened_at"]) == opened
    assert page["items"][1]["reply_count"] == 0 and page["items"][1]["opened_at"] is None
    assert BODY not in str(page) and "Reply 0" not in str(page)


async def test_api_filters_by_status_patient_and_dates(settings: Settings, office: Office) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    first = await record_sent(settings, office, ada, BASE)
    second = await record_sent(settings, office, grace, BASE + timedelta(days=1), status="opened")
    third = await record_sent(settings, office, ada, BASE + timedelta(days=2), status="opened")

    assert ids(await listed(office, status="opened")) == [third.id, second.id]
    assert ids(await listed(office, status="expired")) == []
    assert ids(await listed(office, patient_id=ada)) == [third.id, first.id]
    assert ids(await listed(office, patient_id=grace, status="opened")) == [second.id]
    # since is inclusive, until exclusive; a time without a zone is UTC.
    since = (BASE + timedelta(days=1)).isoformat()
    assert ids(await listed(office, since=since)) == [third.id, second.id]
    assert ids(await listed(office, until=since)) == [first.id]
    naive = (BASE + timedelta(days=1)).replace(tzinfo=None).isoformat()
    assert ids(await listed(office, since=naive, until=naive)) == []
    # The same instant in another zone.
    zoned = (BASE + timedelta(days=2)).astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert ids(await listed(office, since=zoned)) == [third.id]


async def test_api_pages_by_keyset_without_duplicates_or_gaps(
    settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    sent = [await record_sent(settings, office, ada, BASE + timedelta(hours=n)) for n in range(5)]
    # Two sent in the same microsecond: the id breaks the tie.
    sent += [await record_sent(settings, office, ada, BASE + timedelta(hours=9)) for _ in range(2)]
    expected = [s.id for s in sorted(sent, key=lambda s: (s.sent_at, s.id), reverse=True)]

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        page = await listed(office, limit=3, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # A row sent while the office pages does not shift the pages already read.
        if pages == 1:
            await record_sent(settings, office, ada, BASE + timedelta(days=3))
    assert pages == 3 and seen == expected
    # The newest page shows the message sent in between.
    assert len(ids(await listed(office))) == 8
    assert len(ids(await listed(office, limit=200))) == 8


async def test_api_refuses_bad_parameters_naming_them(settings: Settings, office: Office) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    await record_sent(settings, office, ada, BASE)
    api = office.api
    assert fields_refused(await api.get("/api/v1/secure-emails?status=lost")) == {"status"}
    assert fields_refused(await api.get("/api/v1/secure-emails?status=SENT")) == {"status"}
    for cursor in ("not-a-cursor!", "bm90aGluZw", "MjAyNi0xMS0wMlQwOTozMDowMA", "%FF"):
        refused = await api.get(f"/api/v1/secure-emails?cursor={cursor}")
        assert fields_refused(refused) == {"cursor"}, cursor
    for limit in ("0", "201", "many"):
        assert fields_refused(await api.get(f"/api/v1/secure-emails?limit={limit}")) == {"limit"}
    assert fields_refused(await api.get("/api/v1/secure-emails?since=yesterday")) == {"since"}
    # Before year 1 in UTC: out of range, not a server error.
    too_early = await api.get("/api/v1/secure-emails", params={"until": "0001-01-01T00:00+05:00"})
    assert fields_refused(too_early) == {"until"}
    missing = await api.get(f"/api/v1/secure-emails?patient_id={uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["detail"]


async def test_api_never_shows_another_practice(
    other_office: Office, settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    ours = await record_sent(settings, office, ada, BASE)
    theirs_patient = await add_patient(other_office, "Alan Turing")
    theirs = await record_sent(settings, other_office, theirs_patient, BASE + timedelta(hours=1))
    assert ids(await listed(other_office)) == [theirs.id]
    assert ids(await listed(office)) == [ours.id]
    # Naming a patient of the other practice finds nothing of theirs.
    refused = await office.api.get("/api/v1/secure-emails", params={"patient_id": theirs_patient})
    assert refused.status_code == 404 and theirs.id not in refused.text
    refused = await other_office.api.get("/api/v1/secure-emails", params={"patient_id": ada})
    assert refused.status_code == 404
    page = await other_office.browser.get("/email-client/sent")
    assert page.status_code == 200 and ours.id not in page.text
    assert ours.subject not in page.text.replace(theirs.subject, "")


async def test_a_clerk_reads_the_sent_box_and_each_read_is_audited(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    sent = await record_sent(settings, office, ada, BASE, subject="Wisdom tooth extraction")
    clerk = await add_member(app, settings, office.practice_id)
    try:
        assert ids(await listed(office)) == [sent.id]
        page = await clerk.api.get("/api/v1/secure-emails", params={"patient_id": ada})
        assert page.status_code == 200 and ids(page.json()) == [sent.id]
        screen = await clerk.browser.get("/email-client/sent")
        assert screen.status_code == 200 and sent.subject in screen.text
    finally:
        await clerk.api.aclose()
        await clerk.browser.aclose()
    events = await office.audit_events(action=AuditAction.OFFICE_SENT_LIST.value)
    assert len(events) == 3
    by_clerk = [event for event in events if event["actor_id"] == clerk.id]
    assert len(by_clerk) == 2
    assert {event["patient_id"] for event in by_clerk} == {ada, None}
    # Each names the patients shown by id: the line's, and on the page its patient list's.
    assert all(
        event["detail"] == f"1 secure email(s); patients: {ada}" and event["client_address"]
        for event in events
    )
    assert sent.subject not in str(await office.audit_events())
    # A refused request read nothing, so it records nothing.
    assert (await office.api.get("/api/v1/secure-emails?status=lost")).status_code == 422
    assert len(await office.audit_events(action=AuditAction.OFFICE_SENT_LIST.value)) == 3


# The Email Client's Sent tab -----------------------------------------------------------------


async def test_sent_tab_lists_filters_and_pages(settings: Settings, office: Office) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    older = await record_sent(settings, office, ada, BASE, subject="Cleaning reminder")
    newer = await record_sent(
        settings, office, grace, BASE + timedelta(days=1), subject="Crown fitting",
        status="replied", replies=1, opened_at=BASE + timedelta(days=1, hours=1),
    )  # fmt: skip

    inbox = await office.browser.get("/email-client")
    assert '<a href="/email-client" aria-current="page">Inbox</a>' in inbox.text
    assert '<a href="/email-client/sent" >Sent</a>' in inbox.text

    page = await office.browser.get("/email-client/sent")
    assert page.status_code == 200
    assert '<a href="/email-client/sent" aria-current="page">Sent</a>' in page.text
    assert '<th scope="col">Opened at</th>' in page.text
    text = page.text
    assert text.index("Crown fitting") < text.index("Cleaning reminder")
    assert (
        f'href="/secure-emails/{newer.id}"' in text and f'href="/secure-emails/{older.id}"' in text
    )
    # In the practice's zone (R16): New York, standard time again since 1 November.
    assert "Nov 2, 2026, 4:30\u202fAM EST" in text and "Not opened" in text
    assert BODY not in text

    by_status = await office.browser.get("/email-client/sent", params={"status": "replied"})
    assert "Crown fitting" in by_status.text and "Cleaning reminder" not in by_status.text
    assert '<option value="replied" selected>' in by_status.text
    by_patient = await office.browser.get("/email-client/sent", params={"patient_id": ada})
    assert "Cleaning reminder" in by_patient.text and "Crown fitting" not in by_patient.text
    by_day = await office.browser.get(
        "/email-client/sent", params={"from": "2026-11-02", "to": "2026-11-02"}
    )
    assert "Cleaning reminder" in by_day.text and "Crown fitting" not in by_day.text

    # A page at a time: "Older" carries the filters and the cursor, never a name.
    for n in range(50):
        await record_sent(settings, office, ada, BASE - timedelta(days=1, minutes=n))
    first = await office.browser.get("/email-client/sent", params={"patient_id": ada})
    assert first.text.count('href="/secure-emails/') == 50
    older_link = first.text.split('rel="next"')[0].rsplit('<a href="', 1)[1].split('"', 1)[0]
    assert older_link.startswith(f"/email-client/sent?patient_id={ada}&amp;cursor=")
    assert "Ada" not in older_link
    second = await office.browser.get(older_link.replace("&amp;", "&"))
    assert second.status_code == 200 and second.text.count('href="/secure-emails/') == 1
    assert 'rel="next"' not in second.text and ">Newest<" in second.text


async def test_sent_tab_refuses_bad_filters_in_words(settings: Settings, office: Office) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    await record_sent(settings, office, ada, BASE, subject="Cleaning reminder")
    for query, words in (
        ({"status": "lost"}, "Choose a status from the list"),
        ({"patient_id": str(uuid.uuid4())}, "Choose a patient from the list"),
        ({"from": "yesterday"}, "Enter a date such as"),
        ({"from": "2026-11-03", "to": "2026-11-02"}, "The end date comes before the start date"),
        ({"cursor": "nonsense"}, "Not a cursor this list gave out"),
    ):
        page = await office.browser.get("/email-client/sent", params=query)
        assert page.status_code == 422 and words in page.text, query
        assert "Cleaning reminder" not in page.text
    # No secure email was listed; the page's patient list was shown, and is audited.
    refused = await office.audit_events(action=AuditAction.OFFICE_SENT_LIST.value)
    assert [event["detail"] for event in refused] == [f"filters refused; patients: {ada}"] * 5
    assert all(event["patient_id"] is None for event in refused)


async def test_patients_page_links_to_the_patients_secure_emails(
    settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    await record_sent(settings, office, ada, BASE, subject="Cleaning reminder")
    await record_sent(settings, office, grace, BASE, subject="Crown fitting")
    patients = await office.browser.get("/patients")
    link = f'<a href="/email-client/sent?patient_id={ada}">Secure emails'
    assert link in patients.text
    page = await office.browser.get(f"/email-client/sent?patient_id={ada}")
    assert "Cleaning reminder" in page.text and "Crown fitting" not in page.text
    assert f'<option value="{ada}" selected>Ada Lovelace</option>' in page.text


async def test_sent_tab_needs_log_in(anonymous: Any) -> None:
    response = await anonymous.get("/email-client/sent")
    assert response.status_code == 303 and response.headers["location"] == "/login"


async def test_unused_patient_rows_stay_out(settings: Settings, office: Office) -> None:
    """A patient with no secure email is in the filter's list but adds no row."""
    await add_patient(office, "Ada Lovelace")
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        assert await db.scalar(select(Patient.id).where(Patient.practice_id == office.practice_id))
    await engine.dispose()
    page = await office.browser.get("/email-client/sent")
    assert "No secure emails match." in page.text and "Ada Lovelace</option>" in page.text
