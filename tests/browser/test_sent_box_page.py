"""The Email Client's Sent tab in a real browser, on a phone and at a desk: reached from
the patient's row in Patients, filtered by status, each state checked with axe-core; the
filters put an id, a status and dates in the URL, never a patient's name."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import Browser, expect

from infra.settings import Settings
from tests.browser.pages import ON_PHONE_AND_DESK, AccessibilityLog, Device, signed_in_page
from tests.conftest import Office
from tests.web.test_sent_box import BASE, add_patient, record_sent

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@ON_PHONE_AND_DESK
async def test_sent_tab_from_patients_filtered_and_accessible(
    live_app: str, chromium: Browser, office: Office, settings: Settings, device: Device
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    await record_sent(settings, office, ada, BASE, subject="Cleaning reminder")
    await record_sent(
        settings, office, ada, BASE + timedelta(days=1), subject="Crown fitting",
        status="replied", replies=2, opened_at=BASE + timedelta(days=1, hours=3),
    )  # fmt: skip
    await record_sent(settings, office, grace, BASE, subject="Check-up")
    accessibility = AccessibilityLog()
    async with signed_in_page(chromium, live_app, office.email, device=device) as page:
        await page.goto("/email-client")
        tabs = page.get_by_role("navigation", name="Email Client")
        await expect(tabs.get_by_role("link", name="Inbox")).to_have_attribute(
            "aria-current", "page"
        )
        await accessibility.check(page, "inbox")
        await tabs.get_by_role("link", name="Sent").click()
        await expect(tabs.get_by_role("link", name="Sent")).to_have_attribute(
            "aria-current", "page"
        )
        await expect(page.get_by_role("row")).to_have_count(4)  # the header and three
        await expect(page.get_by_role("columnheader", name="Opened at")).to_be_attached()
        await accessibility.check(page, "sent")

        await page.goto("/patients")
        await page.get_by_role("link", name="Secure emails to Ada Lovelace").click()
        await expect(page.get_by_label("Patient")).to_have_value(ada)
        rows = page.get_by_role("row")
        await expect(rows).to_have_count(3)
        # Newest first.
        await expect(rows.nth(1)).to_contain_text("Crown fitting")
        await expect(rows.nth(1)).to_contain_text("replied")
        await expect(rows.nth(2)).to_contain_text("Cleaning reminder")
        assert "Ada" not in page.url and "Lovelace" not in page.url
        await accessibility.check(page, "one patient's")

        await page.get_by_label("Status").select_option("sent")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.get_by_role("row")).to_have_count(2)
        await expect(page.get_by_role("link", name="Cleaning reminder")).to_be_visible()
        assert "status=sent" in page.url and f"patient_id={ada}" in page.url
        assert "Ada" not in page.url

        await page.get_by_label("Sent from").fill("2026-11-03")
        await page.get_by_label("Sent to").fill("2026-11-02")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.get_by_role("alert")).to_contain_text("Correct the filters")
        await expect(page.get_by_text("The end date comes before the start date")).to_be_visible()
        await accessibility.check(page, "refused filters")

        await page.get_by_role("link", name="Clear filters").click()
        await page.get_by_role("link", name="Crown fitting").click()
        await expect(page.get_by_role("heading", name="Crown fitting")).to_be_visible()
    assert accessibility.problems == {}
