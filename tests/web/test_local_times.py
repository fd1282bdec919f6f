"""Local times (R16): pages show times in the practice's IANA time zone, with its
abbreviation, inside ``<time datetime>`` holding the UTC instant; the API and the audit
export stay in UTC. The practice's zone is a setting, on the Settings page too."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from domain.practice import US_TIME_ZONES, time_zones
from infra import alerts
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Reply, SecureEmail
from infra.i18n import moment_text
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.forms import settings_form
from tests.fixtures.stack import Stack
from tests.web.test_portal import send, sign_in
from tests.web.test_sent_box import add_patient, record_sent
from web.templating import local_time, moment_in

# 03:30 UTC is 12:30 in Tokyo the same day, and 22:30 the day before in New York.
SENT_AT = datetime(2026, 1, 15, 3, 30, tzinfo=UTC)
# Babel's en_US: a narrow no-break space before AM/PM; a zone without an English
# abbreviation (Tokyo) shows its offset.
NB = "\u202f"
TOKYO = f'<time datetime="2026-01-15T03:30:00+00:00">Jan 15, 2026, 12:30{NB}PM +0900</time>'
# The office's one way of writing a moment, and every <time> of an office page.
OFFICE_MOMENT = re.compile(
    r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\u202f[AP]M (?:[A-Z]{2,5}|[+-]\d{4})"
)
TIMES = re.compile(r'<time datetime="[^"]+">([^<]*)</time>')


def test_local_time_shows_the_zone_and_keeps_the_utc_instant() -> None:
    assert local_time(SENT_AT, "Asia/Tokyo") == TOKYO
    assert local_time(SENT_AT, "America/New_York") == (
        f'<time datetime="2026-01-15T03:30:00+00:00">Jan 14, 2026, 10:30{NB}PM EST</time>'
    )
    # Summer time has its own abbreviation.
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert f"8:00{NB}AM EDT" in local_time(summer, "America/New_York")
    assert f"Jul 1, 2026, 5:00{NB}AM MST" in local_time(summer, "America/Phoenix")
    # A moment read without its zone is UTC (as the database stores them).
    assert local_time(SENT_AT.replace(tzinfo=None), "Asia/Tokyo") == TOKYO
    assert moment_in(SENT_AT, "America/Chicago") == f"Jan 14, 2026, 9:30{NB}PM CST"


def test_local_time_without_a_known_zone_says_utc() -> None:
    for zone in (None, "", "Mars/Olympus_Mons", object()):
        assert local_time(SENT_AT, zone).endswith(f">Jan 15, 2026, 3:30{NB}AM UTC</time>")


def times_of(page: str) -> list[str]:
    """Every moment the page shows, each checked to be in the office's one format."""
    shown = TIMES.findall(page)
    assert shown, "the page shows no time"
    for text in shown:
        assert OFFICE_MOMENT.fullmatch(text), text
    return shown


async def to_tokyo(office: Office) -> None:
    changed = await office.api.patch("/api/v1/practice", json={"time_zone": "Asia/Tokyo"})
    assert changed.status_code == 200, changed.text


async def test_office_pages_show_the_practices_time_zone(
    settings: Settings, office: Office
) -> None:
    patient_id = await add_patient(office, "Ada Lovelace")
    opened_at = SENT_AT + timedelta(hours=2)
    sent = await record_sent(settings, office, patient_id, SENT_AT, replies=1, opened_at=opened_at)
    # An open one at an address the patient no longer has: the patient's page lists it.
    recent = await record_sent(settings, office, patient_id, datetime.now(UTC))
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == recent.id)
            .values(recipient_address="ada-old@example.com")
        )
        reply = await db.scalar(select(Reply).where(Reply.secure_email_id == sent.id))
        assert reply is not None
        reply_id = reply.id
        await alerts.raise_for_reply(db, reply)
        await db.commit()
    await engine.dispose()

    # The default zone: New York, the evening before.
    page = await office.browser.get(f"/secure-emails/{sent.id}")
    assert f"Jan 14, 2026, 10:30{NB}PM EST" in page.text
    assert "UTC" not in page.text

    await to_tokyo(office)
    status_page = await office.browser.get(f"/secure-emails/{sent.id}")
    assert status_page.status_code == 200
    assert TOKYO in status_page.text
    assert f"Jan 15, 2026, 2:30{NB}PM +0900" in status_page.text  # opened
    assert f"Jan 22, 2026, 12:30{NB}PM +0900" in status_page.text  # expires
    # The open one's expiry field: its hint names the latest expiry, 90 days after sending.
    open_page = await office.browser.get(f"/secure-emails/{recent.id}")
    latest = moment_in(recent.sent_at + timedelta(days=90), "Asia/Tokyo")
    assert re.search(
        f'no later than <time datetime="[^"]+">{re.escape(latest)}</time>', open_page.text
    )
    assert 'type="datetime-local"' in open_page.text
    sent_box = await office.browser.get("/email-client/sent")
    assert TOKYO in sent_box.text
    assert f"Jan 15, 2026, 2:30{NB}PM +0900" in sent_box.text
    inbox = await office.browser.get("/email-client")
    assert f"Jan 15, 2026, 1:30{NB}PM +0900" in inbox.text  # the reply, an hour after sending
    menu = await office.browser.get("/")  # before the reply is read, which acknowledges it
    assert "New secure email reply from Ada Lovelace" in menu.text
    reply_page = await office.browser.get(f"/email-client/replies/{reply_id}")
    assert f"Jan 15, 2026, 1:30{NB}PM +0900" in reply_page.text
    patient_page = await office.browser.get(f"/patients/{patient_id}/edit")
    assert "Open secure emails at the old address" in patient_page.text
    compose = await office.browser.get(f"/patients/{patient_id}/compose")
    audit = await office.browser.get("/audit")
    tokens = await office.browser.get("/tokens")

    # One format on every office page, and never UTC in a practice that has a zone.
    for shown in (
        status_page,
        open_page,
        sent_box,
        inbox,
        reply_page,
        menu,
        patient_page,
        compose,
        audit,
        tokens,
    ):
        assert shown.status_code == 200, shown.url
        times_of(shown.text)
        assert "UTC" not in shown.text, shown.url

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
    assert local_time(at, "Asia/Tokyo") in page.text
    times_of(page.text)
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
    # The US zones by name first, then every other zone under its own heading.
    zones = re.findall(r'<option value="([^"]+)"', page.text)
    assert zones[:7] == [zone for zone, _ in US_TIME_ZONES]
    assert '<option value="America/New_York" selected>Eastern — America/New_York</option>' in (
        page.text
    )
    assert ">Hawaii — Pacific/Honolulu<" in page.text and ">Arizona — America/Phoenix<" in page.text
    us, others = (
        page.text.index('<optgroup label="United States">'),
        page.text.index('<optgroup label="Other time zones">'),
    )
    assert us < others < page.text.index('<option value="Asia/Tokyo">')
    assert len(zones) == len(set(zones)) == len(time_zones())  # every zone, once
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
        # Portal pages write a moment the patient's way (English here), in the
        # practice's zone, inside <time> whose datetime is the UTC instant.
        shown = moment_text(sent_at, "en", "Asia/Tokyo")
        assert f'sent <time datetime="{sent_at.isoformat()}">{shown}</time>' in message.text
        assert f"{tokyo.day}, {tokyo.year}, " in shown and "+0900" in shown
        assert "UTC" not in message.text
        inbox = await patient.get("/portal")
        assert inbox.status_code == 200
        assert f'Sent <time datetime="{sent_at.isoformat()}">{shown}</time>' in inbox.text
        readable_until = moment_text(sent_at + timedelta(days=7), "en", "Asia/Tokyo")
        assert "readable until <time datetime=" in inbox.text
        assert f">{readable_until}</time>" in inbox.text


async def test_api_names_the_us_zones_and_takes_any_iana_zone(office: Office) -> None:
    schema = (await office.api.get("/openapi.json")).json()
    time_zone = schema["components"]["schemas"]["PracticeUpdate"]["properties"]["time_zone"]
    assert "America/Phoenix (Arizona)" in time_zone["description"]
    assert time_zone["examples"][0] == "America/New_York"
    for zone in ("Pacific/Honolulu", "Australia/Lord_Howe", "America/Argentina/Ushuaia"):
        changed = await office.api.patch("/api/v1/practice", json={"time_zone": zone})
        assert changed.status_code == 200, changed.text
        assert changed.json()["time_zone"] == zone
    refused = await office.api.patch("/api/v1/practice", json={"time_zone": "Eastern"})
    assert refused.status_code == 422
