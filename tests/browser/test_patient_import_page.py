"""Importing patients from a CSV file in a real browser, on a phone and at a desk: from
Patients to Import, the file chosen, the preview (counts, the refused row by row and
column, the rows as stored) before anything is written, "Import N patients", and the
patients listed; each state checked with axe-core, nothing of the file in the URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import (
    ON_A_PHONE,
    ON_PHONE_AND_DESK,
    AccessibilityLog,
    Device,
    signed_in_page,
)
from tests.conftest import Office

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

FILE = (
    "\ufefffirst_name;last_name;email;family_id;external_id\r\n"
    "Maria;Garcia;garcia.family@example.com;G1;10041\r\n"
    "Lucas;Garcia;garcia.family@example.com;G1;10042\r\n"
    "Zed;Broken;zed-at-example;;10043\r\n"
)


async def fits(page: Page, device: Device) -> None:
    if device is ON_A_PHONE:
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= ON_A_PHONE.viewport["width"], f"{page.url} is {width} px wide"


@ON_PHONE_AND_DESK
async def test_import_patients_preview_then_confirm(
    live_app: str, chromium: Browser, office: Office, device: Device, tmp_path: Path
) -> None:
    csv_file = tmp_path / "patients.csv"
    csv_file.write_bytes(FILE.encode("utf-8"))
    accessibility = AccessibilityLog()
    async with signed_in_page(chromium, live_app, office.email, device=device) as page:
        await page.goto("/patients")
        await page.get_by_role("link", name="Import patients from a CSV file").click()
        await expect(page.get_by_role("heading", name="Import patients")).to_be_visible()
        await accessibility.check(page, "form")
        await fits(page, device)

        await page.get_by_label("CSV file").set_input_files(str(csv_file))
        await page.get_by_role("button", name="Check the file").click()
        await expect(page.get_by_role("status")).to_contain_text("Nothing has been imported yet")
        await expect(page.get_by_role("status")).to_contain_text("would add 2 patients")
        preview = page.get_by_role("table", name="The rows, as they will be stored")
        await expect(preview).to_contain_text("Maria Garcia")
        await expect(preview).to_contain_text("Lucas Garcia")
        errors = page.get_by_role("table", name="Errors by row and column of the file")
        await expect(errors).to_contain_text("Not an email address")
        await expect(errors).not_to_contain_text("zed-at-example")
        await accessibility.check(page, "preview")
        await fits(page, device)
        listed = await office.api.get("/api/v1/patients")
        assert listed.json()["items"] == []

        await page.get_by_role("button", name="Import 2 patients").click()
        await expect(page.get_by_role("status")).to_contain_text(
            "2 patients added, 0 updated, 0 unchanged"
        )
        await accessibility.check(page, "done")
        await page.get_by_role("link", name="See the patients").click()
        await expect(page.get_by_role("link", name="Edit Maria Garcia")).to_be_visible()
        await expect(page.get_by_role("link", name="Edit Lucas Garcia")).to_be_visible()
        assert "garcia" not in page.url.lower()
    assert accessibility.problems == {}


async def test_import_refusal_is_linked_to_the_file_field(
    live_app: str, chromium: Browser, office: Office, tmp_path: Path
) -> None:
    latin_1 = tmp_path / "patients.csv"
    latin_1.write_bytes("first_name,last_name,email\nJosé,Núñez,j@example.com\n".encode("latin-1"))
    accessibility = AccessibilityLog()
    async with signed_in_page(chromium, live_app, office.email) as page:
        await page.goto("/patients/import")
        await page.get_by_label("CSV file").set_input_files(str(latin_1))
        await page.get_by_role("button", name="Check the file").click()
        await expect(page.get_by_role("alert")).to_contain_text("Save the file as CSV UTF-8")
        field = page.get_by_label("CSV file")
        await expect(field).to_have_attribute("aria-invalid", "true")
        # The field's description is the hint and the refusal.
        await expect(field).to_have_accessible_description(re.compile("Save the file as CSV UTF-8"))
        await accessibility.check(page, "refused")
    assert accessibility.problems == {}
