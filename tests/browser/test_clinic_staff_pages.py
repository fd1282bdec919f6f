"""Clinics in a real browser, as an office uses them: an admin gives a clerk the clinics they
work for on the Staff page; the clerk's Main Menu and Email Client then show only those
clinics' patients and the patients of no clinic, and filter by clinic. Each state checked
with axe-core, at a desk and on a phone."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, expect

from infra.settings import Settings
from tests.browser.pages import ON_PHONE_AND_DESK, AccessibilityLog, Device, signed_in_page
from tests.conftest import Office
from tests.fixtures.threads import patient_with_a_reply
from tests.web.test_api_clinics import add_clinic
from tests.web.test_staff import add_member

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@ON_PHONE_AND_DESK
async def test_admin_restricts_a_clerk_to_a_clinic(
    app: FastAPI,
    settings: Settings,
    live_app: str,
    chromium: Browser,
    office: Office,
    device: Device,
) -> None:
    accessibility = AccessibilityLog()
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    uptown = (await add_clinic(office, name="Uptown"))["id"]
    await patient_with_a_reply(settings, office, "Ana Downtown", downtown)
    await patient_with_a_reply(settings, office, "Bo Uptown", uptown)
    await patient_with_a_reply(settings, office, "Cy Nowhere", None)
    clerk = await add_member(app, settings, office.practice_id, name="Dana Desk")

    async with signed_in_page(chromium, live_app, office.email, device=device) as admin:
        await admin.goto("/staff")
        row = admin.get_by_role("row").filter(has_text="Dana Desk")
        await expect(row.get_by_text("All clinics")).to_be_visible()
        await row.get_by_text("Change clinics").click()
        await row.get_by_label("Downtown").check()
        await accessibility.check(admin, "staff: choosing clinics")
        await row.get_by_role("button", name="Save clinics of Dana Desk").click()
        await expect(admin.get_by_role("status").filter(has_text="Clinics changed")).to_be_visible()
        row = admin.get_by_role("row").filter(has_text="Dana Desk")
        await expect(row.get_by_role("cell").filter(has_text="Downtown")).to_be_visible()
        await expect(row.get_by_text("All clinics")).to_have_count(0)

    async with signed_in_page(chromium, live_app, clerk.email, device=device) as desk:
        alerts = desk.get_by_role("region", name="Alerts")
        await expect(alerts.get_by_role("link", name="Ana Downtown")).to_be_visible()
        await expect(alerts.get_by_role("link", name="Cy Nowhere")).to_be_visible()
        await expect(alerts.get_by_text("Bo Uptown")).to_have_count(0)
        # Only the clerk's own clinic to choose from.
        await expect(desk.get_by_label("Clinic", exact=True).locator("option")).to_have_text(
            ["All clinics", "Downtown"]
        )
        await desk.get_by_label("Clinic", exact=True).select_option(label="Downtown")
        await desk.get_by_role("button", name="Show").click()
        await expect(alerts.get_by_role("link", name="Ana Downtown")).to_be_visible()
        await expect(alerts.get_by_text("Cy Nowhere")).to_have_count(0)
        await accessibility.check(desk, "main menu for one clinic")

        await desk.goto("/email-client")
        await expect(desk.get_by_role("heading", name="Ana Downtown")).to_be_visible()
        await expect(desk.get_by_role("heading", name="Cy Nowhere")).to_be_visible()
        await expect(desk.get_by_text("Bo Uptown")).to_have_count(0)
        await desk.get_by_label("Clinic", exact=True).select_option(label="Downtown")
        await desk.get_by_role("button", name="Show").click()
        await expect(desk.get_by_role("heading", name="Cy Nowhere")).to_have_count(0)
        await expect(desk.get_by_role("heading", name="Ana Downtown")).to_be_visible()
        await accessibility.check(desk, "email client for one clinic")

    assert accessibility.problems == {}
