"""Local times (R16): pages show times in the practice's IANA time zone, with its
abbreviation, inside ``<time datetime>`` holding the UTC instant; the API and the audit
export stay in UTC. The practice's zone is a setting, on the Settings page too."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Reply
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.forms import settings_form
from tests.fixtures.stack import Stack
from tests.web.test_portal import send, sign_in
from tests.web.test_sent_box import add_patient, record_sent
from web.templating import local_time

# 03:30 UTC is 12:30 in Tokyo the same day, and 22:30 the day before in New York.
SENT_AT = datetime(2026, 1, 15, 3, 30, tzinfo=UTC)
TOKYO = '<time datetime="2026-01-15T03:30:00+00:00">15 January 2026 12:30 JST</time>'


def test_local_time_shows_the_zone_and_keeps_the_utc_instant() -> None:
    assert local_time(SENT_AT, "Asia/Tokyo") == TOKYO
    assert local_time(SENT_AT, "America/New_York") == (
        '<time datetime="2026-01-15T03:30:00+00:00">14 January 2026 22:30 EST</time>'
    )
    # Summer time has its own abbreviation.
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert "08:00 EDT" in local_time(summer, "America/New_York")
    # A moment read without its zone is UTC (as the database stores them).
    assert local_time(SENT_AT.replace(tzinfo=None), "Asia/Tokyo") == TOKYO
    assert local_time(SENT_AT, "Asia/Tokyo", "%d %b %Y") == (
        '<time datetime="2026-01-15T03:30:00+00:00">15 Jan 2026</time>'
    )


def test_local_time_without_a_known_zone_says_utc() -> None:
    for zone in (None, "", "Mars/Olympus_Mons", object()):
        assert local_time(SENT_AT, zone).endswith(">15 January 2026 03:30 UTC</time>")


async def to_tokyo(office: Office) -> None:
    changed = await office.api.patch("/api/v1/practice", json={"time_zone": "Asia/Tokyo"})
    assert changed.status_code == 200, changed.text


async def test_office_pages_show_the_practices_time_zone(
    settings: Settings, office: Office
) -> None:
    patient_id = await add_patient(office, "Ada Lovelace")
    opened_at = SENT_AT + timedelta(hours=2)
    sent = await record_sent(settings, office, patient_id, SENT_AT, replies=1, opened_at=opened_at)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        reply_id = await db.scalar(select(Reply.id).where(Reply.secure_email_id == sent.id))
    await engine.dispose()

    # The default zone: New York, the evening before.
    page = await office.browser.get(f"/secure-emails/{sent.id}")
    assert "14 January 2026 22:30 EST" in page.text
    assert "UTC" not in page.text

    await to_tokyo(office)
    status_page = await office.browser.get(f"/secure-emails/{sent.id}")
    assert status_page.status_code == 200
    assert TOKYO in status_page.text
    assert "15 January 2026 14:30 JST" in status_page.text  # opened
    assert "22 January 2026 12:30 JST" in status_page.text  # expires
    sent_box = await office.browser.get("/email-client/sent")
    assert '<time datetime="2026-01-15T03:30:00+00:00">15 Jan 2026 12:30 JST</time>' in (
        sent_box.text
    )
    assert "15 Jan 2026 14:30 JST" in sent_box.text
    inbox = await office.browser.get("/email-client")
    assert "15 January 2026 13:30 JST" in inbox.text  # the reply, an hour after sending
    reply = await office.browser.get(f"/email-client/replies/{reply_id}")
    assert "15 January 2026 13:30 JST" in reply.text

    # The API keeps speaking UTC.
    api = (await office.api.get(f"/api/v1/secure-emails/{sent.id}")).json()
    assert datetime.fromisoformat(api["sent_at"]) == SENT_AT
    assert datetime.fromisoformat(api["sent_at"]).utcoffset() == timedelta(0)


async def test_audit_page_local_and_export_utc(office: Office) -> None:
    await to_tokyo(office)
    events = await office.audit_events(action="office.settings_change")
    at = datetime.fromisoformat(events[0]["at"])
    assert at.utcoffset() == timedelta(0)
    page = await office.browser.get("/audit", params={"action": "office.settings_change"})
    assert page.status_code == 200
    assert "When (UTC)" not in page.text
    assert str(local_time(at, "Asia/Tokyo")) in page.text
    export = await office.browser.get("/audit.csv", params={"action": "office.settings_change"})
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert rows and all("JST" not in value for row in rows for value in row.values())
    assert any(at.isoformat()[:19] in value for value in rows[0].values())


async def test_settings_page_shows_and_saves_the_time_zone(office: Office) -> None:
    page = await office.browser.get("/settings")
    assert page.status_code == 200
    assert '<label for="time_zone">Time zone</label>' in page.text
    assert '<option value="America/New_York" selected>' in page.text
    assert '<label for="reminder_after_hours">Reminder after (hours)</label>' in page.text
    assert "0 turns reminders off" in page.text
    assert 'value="48"' in page.text
    # The Americas first.
    zones = re.findall(r'<option value="([^"]+)"', page.text)
    assert zones[0].startswith("America/") and "Asia/Tokyo" in zones
    tokyo = settings_form(time_zone="Asia/Tokyo", reminder_after_hours="24")
    saved = await office.browser.post("/settings", data=tokyo)
    assert saved.status_code == 303
    practice = (await office.api.get("/api/v1/practice")).json()
    assert practice["time_zone"] == "Asia/Tokyo"
    assert practice["reminder_after_hours"] == 24
    again = await office.browser.get("/settings")
    assert '<option value="Asia/Tokyo" selected>' in again.text
    assert 'value="24"' in again.text


async def test_settings_page_refuses_bad_zone_and_late_reminder(office: Office) -> None:
    before = (await office.api.get("/api/v1/practice")).json()
    form = settings_form(
        "Smile Dental North", expiry_days="3", time_zone="Europe/Paris", reminder_after_hours="12"
    )
    bad_zone = await office.browser.post("/settings", data={**form, "time_zone": "Mars/Base"})
    assert bad_zone.status_code == 422
    assert "Nothing was saved" in bad_zone.text
    assert "Time zone: choose one of the listed time zones" in bad_zone.text
    assert 'value="Smile Dental North"' in bad_zone.text  # what was typed is kept
    # Three days are 72 hours: a reminder then would come with the expiry.
    late = await office.browser.post("/settings", data={**form, "reminder_after_hours": "72"})
    assert late.status_code == 422
    assert "at or after the expiry" in late.text
    assert 'value="72"' in late.text
    assert '<option value="Europe/Paris" selected>' in late.text
    not_a_number = await office.browser.post(
        "/settings", data={**form, "reminder_after_hours": "two days"}
    )
    assert not_a_number.status_code == 422
    assert "0 turns reminders off" in not_a_number.text
    assert (await office.api.get("/api/v1/practice")).json() == before


async def test_portal_pages_show_the_practices_time_zone(stack: Stack) -> None:
    await to_tokyo(stack.office)
    secure_email_id, link = await send(stack)
    sent_at = datetime.fromisoformat(
        (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()["sent_at"]
    )
    tokyo = sent_at.astimezone(ZoneInfo("Asia/Tokyo"))
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        message = await patient.get(message_path)
        assert message.status_code == 200
        assert f"sent {local_time(sent_at, 'Asia/Tokyo')}" in message.text
        assert tokyo.strftime("%H:%M JST") in message.text
        assert "UTC" not in message.text
        inbox = await patient.get("/portal")
        assert inbox.status_code == 200
        assert tokyo.strftime("%d %B %Y") in inbox.text
        readable_until = local_time(sent_at + timedelta(days=7), "Asia/Tokyo")
        assert f"readable until {readable_until}" in inbox.text
