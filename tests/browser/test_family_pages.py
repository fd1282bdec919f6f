"""Families in a real browser, on a phone and at a desk: adding a patient at an address
another patient has asks first, "Join the family" adds them to it, and the patient page
lists the family as links with the shared-mailbox warning; each state checked with
axe-core."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser.pages import ON_PHONE_AND_DESK, AccessibilityLog, Device, signed_in_page
from tests.conftest import Office

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HOME = "smithfam@example.com"


@ON_PHONE_AND_DESK
async def test_join_the_family_then_see_it_on_the_patient_page(
    live_app: str, chromium: Browser, office: Office, device: Device
) -> None:
    added = await office.api.post("/api/v1/patients", json={"name": "John Smith", "email": HOME})
    john = added.json()["id"]
    accessibility = AccessibilityLog()
    async with signed_in_page(chromium, live_app, office.email, device=device) as page:
        await page.goto("/patients")
        await page.get_by_label("Name", exact=True).fill("Emma Smith")
        await page.get_by_label("Email", exact=True).fill(HOME)
        await page.get_by_role("button", name="Add patient").click()
        question = page.get_by_role("alert")
        await expect(question).to_contain_text(
            "Emma Smith's address smithfam@example.com is already used by John Smith. "
            "Join John Smith's family? Whoever reads this mailbox can read every secure "
            "email sent to it."
        )
        await expect(page.get_by_role("link", name="Use another address")).to_be_visible()
        await accessibility.check(page, "asked")

        await page.get_by_role("button", name="Join the family").click()
        await expect(page.get_by_text("Patient added.")).to_be_visible()
        await page.get_by_role("link", name="Edit Emma Smith").click()
        family = page.get_by_role("region", name="Family")
        await expect(family).to_contain_text(
            f"{HOME} is also used by John Smith. Whoever reads this mailbox can read every "
            "secure email sent to it."
        )
        await accessibility.check(page, "family")
        await family.get_by_role("link", name="John Smith").click()
        await expect(page).to_have_url(f"{live_app}/patients/{john}/edit")
        await expect(page.get_by_role("region", name="Family")).to_contain_text("Emma Smith")
    assert accessibility.problems == {}
