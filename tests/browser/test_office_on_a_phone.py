"""Every office page on a 390 px phone, with a practice's worth of long names and
addresses: nothing scrolls sideways, every link of the navigation can be reached, and
axe-core finds nothing serious; at a desk the lists are still tables."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from domain.staff import StaffRole
from infra.accounts import create_api_token, create_staff_user
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Attachment, ChartDocument, Clinic, Practice, Reply
from infra.settings import Settings
from tests.browser.pages import AT_A_DESK, ON_A_PHONE, AccessibilityLog, log_in, signed_in_page
from tests.conftest import STAFF_PASSWORD, Office
from tests.web.test_sent_box import BASE, record_sent

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PHONE_WIDTH = 390
# Names and addresses as long as a practice really has (and longer than a phone is wide).
PATIENTS = [
    ("Maria Guadalupe Fernández-Villanueva de la Cruz", "maria.guadalupe.fernandez.villanueva"),
    ("Bartholomew Alexander Montgomery-Smythe III", "bartholomew.montgomery.smythe.the.third"),
    ("Ada Lovelace", "ada"),
    ("Grace Brewster Murray Hopper", "grace.brewster.murray.hopper"),
]
STAFF = [
    ("Anastasia Konstantinopoulou-Papadimitriou", StaffRole.CLERK),
    ("Christopher Wellington-Harrington", StaffRole.ADMIN),
]


@dataclass(frozen=True)
class Practice_:
    patient_id: str
    secure_email_id: str
    reply_id: str
    clinic_id: str


async def seed(settings: Settings, office: Office) -> Practice_:
    """Patients, staff, tokens, sent secure emails with replies and chart files."""
    patient_ids = []
    for name, local in PATIENTS:
        email = f"{local}-{uuid.uuid4().hex[:4]}@a-very-long-family-domain-name.example"
        added = await office.api.post("/api/v1/patients", json={"name": name, "email": email})
        assert added.status_code == 201, added.text
        patient_ids.append(added.json()["id"])
    sent = []
    for n, patient_id in enumerate(patient_ids):
        sent.append(
            await record_sent(
                settings,
                office,
                patient_id,
                BASE + timedelta(days=n),
                subject="Your treatment plan and the estimate from your insurance company",
                status="replied",
                replies=2,
                opened_at=BASE + timedelta(days=n, hours=1),
            )  # fmt: skip
        )
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        practice = await db.get(Practice, office.practice_id)
        assert practice is not None
        for name, role in STAFF:
            local = name.split()[0].lower() + "." + name.split()[-1].lower()
            email = f"{local}-{uuid.uuid4().hex[:4]}@smile-dental-and-orthodontics.example"
            member = await create_staff_user(
                db, practice, email, STAFF_PASSWORD, name=name, role=role
            )
            await create_api_token(
                db, member, f"Open Dental nightly synchronisation for {name}",
                expires_at=datetime.now(UTC) + timedelta(days=90),
            )  # fmt: skip
        first = sent[0]
        replies = (
            await db.scalars(select(Reply.id).where(Reply.secure_email_id == first.id))
        ).all()
        for n, reply_id in enumerate(replies):
            content = f"file {n}".encode()
            attachment = Attachment(
                secure_email_id=first.id,
                reply_id=reply_id,
                object_key=f"replies/{reply_id}/{uuid.uuid4()}",
                filename=f"insurance-card-front-and-back-scanned-at-home-{n}.pdf",
                size=len(content) * 40_000,
                content_type="application/pdf",
                sha256=hashlib.sha256(content).hexdigest(),
            )
            db.add(attachment)
            await db.flush()
            db.add(
                ChartDocument(
                    practice_id=office.practice_id,
                    patient_id=first.patient_id,
                    attachment_id=attachment.id,
                )
            )
        clinic = Clinic(
            id=str(uuid.uuid4()),
            practice_id=office.practice_id,
            name="Smile Dental and Orthodontics of North Springfield",
            secure_email_enabled=True,
            sender_address="north-springfield@smile-dental-and-orthodontics.example",
            phone="+1 (555) 010-2233 ext. 1234",
            time_zone="America/Argentina/Buenos_Aires",
        )
        db.add(clinic)
        await db.commit()
        reply_id = replies[0]
        clinic_id = clinic.id
    await engine.dispose()
    return Practice_(patient_ids[0], sent[0].id, reply_id, clinic_id)


def office_pages(seeded: Practice_) -> dict[str, str]:
    patient = seeded.patient_id
    return {
        "menu": "/",
        "patients": "/patients",
        "patient edit": f"/patients/{patient}/edit",
        "compose": f"/patients/{patient}/compose",
        "secure email status": f"/secure-emails/{seeded.secure_email_id}",
        "withdraw": f"/secure-emails/{seeded.secure_email_id}/withdraw",
        "email client inbox": "/email-client",
        "email client sent": "/email-client/sent",
        "reply": f"/email-client/replies/{seeded.reply_id}",
        "chart": f"/patients/{patient}/chart",
        "settings": "/settings",
        "clinics": "/settings/clinics",
        "clinic": f"/settings/clinics/{seeded.clinic_id}",
        "staff": "/staff",
        "tokens": "/tokens",
        "audit": "/audit",
        "change password": "/change-password",
    }


async def page_width(page: Page) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


async def unreachable_links(page: Page) -> list[str]:
    """The office navigation's links not wholly on the screen's width."""
    nav = page.get_by_role("navigation", name="Office")
    outside = []
    for link in await nav.get_by_role("link").all():
        box = await link.bounding_box()
        if box is None or box["x"] < 0 or box["x"] + box["width"] > PHONE_WIDTH:
            outside.append(await link.inner_text())
    return outside


async def test_every_office_page_fits_a_phone(
    live_app: str, chromium: Browser, office: Office, settings: Settings
) -> None:
    seeded = await seed(settings, office)
    accessibility = AccessibilityLog()
    too_wide: dict[str, int] = {}
    hidden_links: dict[str, list[str]] = {}

    context = await chromium.new_context(
        viewport=ON_A_PHONE.viewport, is_mobile=True, base_url=live_app
    )
    login = await context.new_page()
    await login.goto("/login")
    if (width := await page_width(login)) > PHONE_WIDTH:
        too_wide["login"] = width
    await accessibility.check(login, "login")
    await context.close()

    async with signed_in_page(chromium, live_app, office.email, device=ON_A_PHONE) as page:
        for name, path in office_pages(seeded).items():
            response = await page.goto(path)
            assert response is not None and response.ok, (name, response)
            if (width := await page_width(page)) > PHONE_WIDTH:
                too_wide[name] = width
            if outside := await unreachable_links(page):
                hidden_links[name] = outside
            await accessibility.check(page, name)
        # The lists' rows are cards: each row's actions come first, its cells labelled.
        await page.goto("/patients")
        row = page.get_by_role("row").filter(has_text=PATIENTS[1][0])
        email_link = row.get_by_role("link", name=f"Email {PATIENTS[1][0]}")
        name_cell = row.locator("td[data-label=Name]")
        link_box, name_box = await email_link.bounding_box(), await name_cell.bounding_box()
        assert link_box is not None and name_box is not None
        assert link_box["y"] < name_box["y"]
        label = await name_cell.evaluate("cell => getComputedStyle(cell, '::before').content")
        assert label == '"Name"'
        # The audit log's moments, each on one line.
        await page.goto("/audit")
        lines = await page.locator("td.when time").evaluate_all(
            "times => times.map(time => time.getClientRects().length)"
        )
        assert lines and set(lines) == {1}
        await (
            page.get_by_role("navigation", name="Office")
            .get_by_role("link", name="Email Client")
            .click()
        )
        await expect(page.get_by_role("heading", name="Email Client")).to_be_visible()

    assert too_wide == {}
    assert hidden_links == {}
    assert accessibility.problems == {}


async def test_office_lists_are_tables_at_a_desk(
    live_app: str, chromium: Browser, office: Office, settings: Settings
) -> None:
    await seed(settings, office)
    async with signed_in_page(chromium, live_app, office.email, device=AT_A_DESK) as page:
        for path in ("/patients", "/staff", "/tokens", "/audit", "/email-client/sent"):
            await page.goto(path)
            header = page.get_by_role("columnheader").first
            await expect(header).to_be_visible()
            displays = await page.locator("main table tbody tr").evaluate_all(
                "rows => rows.map(row => getComputedStyle(row).display)"
            )
            assert displays and set(displays) == {"table-row"}, path
            assert await page_width(page) <= AT_A_DESK.viewport["width"], path
            if path == "/audit":
                lines = await page.locator("td.when time").evaluate_all(
                    "times => times.map(time => time.getClientRects().length)"
                )
                assert lines and set(lines) == {1}


async def test_log_in_page_fits_a_phone_before_log_in(live_app: str, chromium: Browser) -> None:
    context = await chromium.new_context(
        viewport=ON_A_PHONE.viewport, is_mobile=True, base_url=live_app
    )
    page = await context.new_page()
    await log_in(page, "nobody@example.com", "wrong password here")
    await expect(page.get_by_role("alert")).to_be_visible()
    assert await page_width(page) <= PHONE_WIDTH
    await context.close()
