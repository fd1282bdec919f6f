"""The expiry rule (R8) has one definition, ``domain.secure_email.is_expired``; the
portal's Inbox lists every message a page at a time and marks the expired ones by it,
without their subject. These tests hold the Inbox to that answer, at the boundary too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.secure_email import is_expired
from infra import secure_emails
from infra.db.engine import make_engine, make_sessionmaker
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_sent_box import add_patient, record_sent

LIFETIME = timedelta(days=7)


async def test_the_inbox_marks_expired_by_is_expired(settings: Settings, office: Office) -> None:
    patient_id = await add_patient(office, "Ada Lovelace")
    now = datetime.now(UTC).replace(microsecond=0)
    second, day = timedelta(seconds=1), timedelta(days=1)
    cases = {
        "its time comes exactly now": ("sent", now),
        "its time came a second ago": ("sent", now - second),
        "a second left": ("sent", now + second),
        "opened, a day left": ("opened", now + day),
        "marked expired by its workflow, time not yet come": ("expired", now + day),
        "marked expired, time come": ("expired", now - day),
    }
    named: dict[str, str] = {}
    for name, (status, expires_at) in cases.items():
        sent = await record_sent(settings, office, patient_id, expires_at - LIFETIME, status=status)
        named[sent.id] = name

    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        lines, _ = await secure_emails.inbox_page_of_patients(
            db, [patient_id], limit=len(cases) + 1, now=now
        )
    await engine.dispose()

    assert {named[line.id] for line in lines} == set(cases)  # every one listed
    marked = {named[line.id] for line in lines if line.expired}
    expired = {
        name for name, (status, expires_at) in cases.items() if is_expired(status, expires_at, now)
    }
    assert marked == expired == set(cases) - {"a second left", "opened, a day left"}
    for line in lines:
        assert (line.subject == "") == line.expired, named[line.id]
