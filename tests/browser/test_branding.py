"""The Settings page's phone, address and logo in a real browser, checked with axe-core:
a refused phone and logo say why beside their fields, a PNG is taken and removed."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, FilePayload, expect

from tests.browser.conftest import serious_accessibility_problems
from tests.browser.pages import signed_in_page
from tests.conftest import Office
from tests.fixtures.mail import png_image

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_settings_page_phone_address_and_logo(
    live_app: str, chromium: Browser, office: Office
) -> None:
    async with signed_in_page(chromium, live_app, office.email) as page:
        await page.goto("/settings")
        phone = page.get_by_label("Phone", exact=True)
        await expect(phone).to_have_accessible_description(re.compile("Questions\\? Call"))
        await expect(page.get_by_text("No logo")).to_be_visible()
        await expect(page.get_by_role("button", name="Remove logo")).to_have_count(0)

        await phone.fill("call us")
        await page.get_by_label("Address", exact=True).fill("12 Main St, Springfield")
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.get_by_text("Enter a phone number of 7 to 20 digits")).to_be_visible()
        await expect(phone).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_label("Address", exact=True)).to_have_value(
            "12 Main St, Springfield"
        )
        problems = await serious_accessibility_problems(page)
        await phone.fill("(555) 010-2233")
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.get_by_role("status")).to_have_text("Settings saved.")

        # A text file called logo.png is refused by its bytes.
        logo = page.get_by_label("Upload a logo")
        await logo.set_input_files(
            files=FilePayload(name="logo.png", mimeType="image/png", buffer=b"not an image")
        )
        await page.get_by_role("button", name="Upload logo").click()
        await expect(page.get_by_text("must be a PNG or JPEG image")).to_be_visible()
        problems += await serious_accessibility_problems(page)

        await page.get_by_label("Upload a logo").set_input_files(
            files=FilePayload(name="logo.png", mimeType="image/png", buffer=png_image())
        )
        await page.get_by_role("button", name="Upload logo").click()
        await expect(page.get_by_role("status")).to_have_text("Logo saved.")
        await expect(page.get_by_label("Replace the logo")).to_be_visible()
        await page.get_by_role("button", name="Remove logo").click()
        await expect(page.get_by_role("status")).to_have_text("Logo removed.")
        await expect(page.get_by_text("No logo")).to_be_visible()
    practice = (await office.api.get("/api/v1/practice")).json()
    assert (practice["phone"], practice["address"]) == ("(555) 010-2233", "12 Main St, Springfield")
    assert problems == []
