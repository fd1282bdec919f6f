"""Editing a patient in a real browser, on a phone and at a desk: reached from the
patient's row in Patients, a refusal named beside its field, and after a change of
address the page says where the open secure emails stay and offers Send again; each
state checked with axe-core. Nothing typed lands in the URL."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail, StaffUser
from infra.settings import Settings
from tests.browser.pages import ON_PHONE_AND_DESK, AccessibilityLog, Device, signed_in_page
from tests.conftest import Office

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

OLD = "ada@example.com"
NEW = "ada.king@example.com"


async def record_open(settings: Settings, office: Office, patient_id: str, subject: str) -> None:
    """An open secure email as Send Secure and its workflow leave it: sent to ``OLD``."""
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        staff_id = await db.scalar(select(StaffUser.id).where(StaffUser.email == office.email))
        assert staff_id is not None
        now = datetime.now(UTC)
        db.add(
            SecureEmail(
                practice_id=office.practice_id,
                patient_id=patient_id,
                staff_id=staff_id,
                subject=subject,
                body="Two fillings, upper left.",
                link_token_hash=secrets.token_hex(32),
                status="sent",
                status_sequence=1,
                sent_at=now,
                expires_at=now + timedelta(days=7),
                recipient_address=OLD,
            )
        )
        await db.commit()
    await engine.dispose()


@ON_PHONE_AND_DESK
async def test_edit_patient_from_patients_and_accessible(
    live_app: str, chromium: Browser, office: Office, settings: Settings, device: Device
) -> None:
    added = await office.api.post("/api/v1/patients", json={"name": "Ada Lovelace", "email": OLD})
    patient_id = added.json()["id"]
    await record_open(settings, office, patient_id, "Treatment plan")
    accessibility = AccessibilityLog()
    async with signed_in_page(chromium, live_app, office.email, device=device) as page:
        await page.goto("/patients")
        await page.get_by_role("link", name="Edit Ada Lovelace").click()
        await expect(page.get_by_role("heading", name="Edit patient")).to_be_visible()
        await expect(page.get_by_label("Name")).to_have_value("Ada Lovelace")
        await expect(page.get_by_label("Email")).to_have_value(OLD)
        await expect(page.get_by_label("Status")).to_have_value("Patient")
        await accessibility.check(page, "edit")

        await page.get_by_label("Email").fill("not-an-address")
        await page.get_by_role("button", name="Save changes").click()
        await expect(page.get_by_role("alert")).to_contain_text("The patient was not changed")
        await expect(page.get_by_label("Email")).to_have_value("not-an-address")
        await expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
        await accessibility.check(page, "refused")

        await page.get_by_label("Email").fill(NEW)
        await page.get_by_role("button", name="Save changes").click()
        await expect(page.get_by_text("Changes saved.")).to_be_visible()
        await expect(
            page.get_by_text(f"Open secure emails stay with {OLD}; new ones go to {NEW}.")
        ).to_be_visible()
        send_again = re.compile(rf"^Send again\s+“Treatment plan”\s+to {re.escape(NEW)}$")
        await expect(page.get_by_role("button", name=send_again)).to_be_visible()
        assert "ada" not in page.url.lower()
        await accessibility.check(page, "after the change")
    assert accessibility.problems == {}
