"""The office's changes on a secure email's status page, in a real browser on a phone and
at a desk (R15): resend the notice, change the expiry (refused, then accepted, on the
practice's clock), withdraw after confirming, and the patient's link afterwards; each state
checked with axe-core."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, ViewportSize, expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.pages import AccessibilityLog, log_in
from tests.conftest import STAFF_PASSWORD
from tests.fixtures.stack import Stack
from tests.web.test_office_changes import send

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
async def test_resend_change_expiry_and_withdraw(
    live_stack: Stack, chromium: Browser, size: str, viewport: ViewportSize
) -> None:
    stack = live_stack
    secure_email_id, link = await send(stack)
    axe = AccessibilityLog()
    check = axe.check

    context = await chromium.new_context(
        viewport=viewport, is_mobile=size == "phone", base_url=stack.settings.public_url
    )
    page = await context.new_page()
    await log_in(page, stack.office.email, STAFF_PASSWORD)
    await expect(page.get_by_role("heading", name="Main Menu")).to_be_visible()
    await page.goto(f"/secure-emails/{secure_email_id}")
    timeline = page.get_by_role("region", name="Timeline").get_by_role("listitem")
    await expect(timeline.first).to_contain_text("Notice emailed to the patient")
    await expect(timeline.filter(has_text="Notice emailed")).to_have_count(1)
    await check(page, "status page")

    await page.get_by_role("button", name="Resend notice").click()
    await expect(page.get_by_role("status")).to_contain_text("The notice was sent again")
    await expect(timeline.filter(has_text="Notice sent again")).to_have_count(1)
    await check(page, "notice resent")

    expiry = page.get_by_label("New expiry")
    await expiry.fill(
        (datetime.now(ZoneInfo("America/New_York")) + timedelta(minutes=10)).strftime(
            "%Y-%m-%dT%H:%M"
        )
    )
    await page.get_by_role("button", name="Change expiry").click()
    await expect(
        page.get_by_text("The new expiry must be at least one hour from now")
    ).to_be_visible()
    await expect(page.get_by_label("New expiry")).to_have_attribute("aria-invalid", "true")
    await check(page, "expiry refused")
    later = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=12)).replace(
        hour=16, minute=30
    )
    await page.get_by_label("New expiry").fill(later.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Change expiry").click()
    await expect(page.get_by_role("status")).to_contain_text("The expiry was changed.")
    # The new expiry, written the office's one way.
    shown = f"{later:%b} {later.day}, {later.year}, 4:30\u202fPM"
    await expect(page.locator("dd time").filter(has_text=shown)).to_have_count(1)
    await expect(timeline.filter(has_text="Expiry changed")).to_have_count(1)

    await page.get_by_role("button", name="Withdraw").click()
    await expect(
        page.get_by_text(
            "Withdraw this secure email? The patient will no longer be able to read it."
        )
    ).to_be_visible()
    await check(page, "confirm withdraw")
    await page.get_by_role("link", name="Cancel").click()
    await expect(page.locator("#status")).to_have_text("sent")
    await page.get_by_role("button", name="Withdraw").click()
    await page.get_by_role("button", name="Withdraw").click()
    await expect(page.get_by_role("status")).to_contain_text("can no longer read")
    await expect(page.locator("#status")).to_have_text("withdrawn")
    await expect(timeline.filter(has_text="Withdrawn")).to_have_count(1)
    await expect(page.get_by_role("button", name="Resend notice")).to_have_count(0)
    await check(page, "withdrawn")
    await context.close()

    # The patient's link now says who withdrew it, and nothing of the message.
    patient_context = await chromium.new_context(
        viewport=viewport, is_mobile=size == "phone", base_url=stack.settings.public_url
    )
    patient = await patient_context.new_page()
    await patient.goto(link)
    await expect(
        patient.get_by_role("heading", name="This secure email was withdrawn")
    ).to_be_visible()
    await expect(patient.get_by_role("alert")).to_contain_text("withdrawn by Smile Dental")
    await expect(patient.get_by_text("Crown")).to_have_count(0)
    await check(patient, "patient's link, withdrawn")
    await patient_context.close()
    assert axe.problems == {}
