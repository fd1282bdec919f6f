"""The seed's whole patient process in a real browser, on a phone-sized screen, with the
office on a desktop screen: notice → passcode → read → Files → Reply All with a PNG and a
PDF → Sent → the office's alert, Email Client and chart → Sign Out → Back shows nothing.
Every page passes axe-core without serious or critical violations."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, FilePayload, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, serious_accessibility_problems
from tests.conftest import STAFF_PASSWORD
from tests.fixtures.stack import Stack

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 50
SUBJECT = "Your new retainer"
BODY = "Please wear it every night."
REPLY = "Thank you! My insurance card and claim form are attached."

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def check_accessibility(page: Page, problems: dict[str, object]) -> None:
    found = await serious_accessibility_problems(page)
    if found:
        problems[page.url] = found


async def test_patient_journey(live_stack: Stack, chromium: Browser, tmp_path: object) -> None:
    stack = live_stack
    base = stack.settings.public_url
    problems: dict[str, object] = {}

    office_context = await chromium.new_context(viewport=DESKTOP, base_url=base)
    office = await office_context.new_page()
    await office.goto("/login")
    await check_accessibility(office, problems)
    await office.get_by_label("Email").fill(stack.office.email)
    await office.get_by_label("Password").fill(STAFF_PASSWORD)
    await office.get_by_role("button", name="Log in").click()
    await expect(office.get_by_role("heading", name="Main Menu")).to_be_visible()
    await check_accessibility(office, problems)

    await office.get_by_role("link", name="Patients", exact=True).first.click()
    await office.get_by_label("Name", exact=True).fill("Ada Lovelace")
    await office.get_by_label("Email", exact=True).fill("ada@example.com")
    await office.get_by_role("button", name="Add patient").click()
    await expect(office.get_by_text("Patient added.")).to_be_visible()
    await check_accessibility(office, problems)
    await office.get_by_role("link", name="Email Ada Lovelace").click()
    await check_accessibility(office, problems)
    await office.get_by_label("Subject").fill(SUBJECT)
    await office.get_by_label("Body").fill(BODY)
    await office.get_by_label("Attachments").set_input_files(
        [FilePayload(name="retainer-care.pdf", mimeType="application/pdf", buffer=PDF)]
    )
    await office.get_by_role("button", name="Send Secure").click()
    await expect(office.get_by_text("Sent.")).to_be_visible()
    await check_accessibility(office, problems)

    # The patient, on a phone.
    patient_context = await chromium.new_context(viewport=PHONE, is_mobile=True)
    patient = await patient_context.new_page()
    await patient.goto(await stack.notice_url("ada@example.com"))
    await check_accessibility(patient, problems)
    await patient.get_by_role("button", name="View Secure Email").click()
    await expect(patient.get_by_label("Passcode")).to_be_visible()
    await check_accessibility(patient, problems)
    await patient.get_by_label("Passcode").fill(await stack.passcode("ada@example.com", 2))
    await patient.get_by_role("button", name="Verify").click()
    await expect(patient.get_by_role("heading", name=SUBJECT)).to_be_visible()
    await expect(patient.get_by_text(BODY)).to_be_visible()
    await check_accessibility(patient, problems)

    await patient.get_by_role("link", name="Files").click()
    await expect(patient.get_by_role("link", name="retainer-care.pdf")).to_be_visible()
    await check_accessibility(patient, problems)
    await patient.get_by_role("link", name="Inbox").click()
    await check_accessibility(patient, problems)
    await patient.get_by_role("link", name=SUBJECT).click()
    await patient.get_by_role("link", name="Reply All").click()
    await expect(patient.get_by_label("Subject")).to_have_value(f"RE: {SUBJECT}")
    await check_accessibility(patient, problems)
    # The office waits on its Main Menu; the alert must arrive without a reload.
    await (
        office.get_by_role("navigation", name="Office")
        .get_by_role("link", name="Main Menu")
        .click()
    )
    await expect(office.locator("#alert-count")).to_have_text("0")
    menu_loaded_at = await office.evaluate("performance.timeOrigin")

    await patient.get_by_label("Your message").fill(REPLY)
    await patient.get_by_label("Attachments").set_input_files(
        [
            FilePayload(name="card.png", mimeType="image/png", buffer=PNG),
            FilePayload(name="claim.pdf", mimeType="application/pdf", buffer=PDF),
        ]
    )
    await patient.get_by_role("button", name="Send reply").click()
    await expect(patient.get_by_text("Your reply was sent")).to_be_visible()
    await expect(patient.get_by_role("link", name=f"RE: {SUBJECT}")).to_be_visible()
    await check_accessibility(patient, problems)

    # The office: the alert appeared live, names the patient only.
    alert = office.get_by_role("link", name="New secure email reply from Ada Lovelace")
    await expect(alert).to_be_visible(timeout=15_000)
    await expect(office.locator("#alert-count")).to_have_text("1")
    assert await office.evaluate("performance.timeOrigin") == menu_loaded_at  # no reload
    assert REPLY not in await office.content()
    await check_accessibility(office, problems)
    await (
        office.get_by_role("navigation", name="Office")
        .get_by_role("link", name="Email Client")
        .click()
    )
    await expect(office.get_by_text("Ada Lovelace").first).to_be_visible()
    await check_accessibility(office, problems)
    await office.get_by_role("link", name="Reply of").first.click()
    await expect(office.get_by_text(REPLY)).to_be_visible()
    await check_accessibility(office, problems)
    await office.get_by_role("link", name="Chart").first.click()
    await expect(office.get_by_role("link", name="card.png")).to_be_visible()
    await expect(office.get_by_role("link", name="claim.pdf")).to_be_visible()
    await check_accessibility(office, problems)
    async with office.expect_download() as downloading:
        await office.get_by_role("link", name="card.png").click()
    downloaded = await downloading.value
    assert Path(await downloaded.path()).read_bytes() == PNG
    await office.goto("/")
    await expect(office.locator("#alert-count")).to_have_text("0")

    # Sign Out, then Back: nothing of the message is shown.
    await patient.get_by_text("Menu").click()
    await patient.get_by_role("button", name="Sign Out").click()
    await expect(patient.get_by_role("heading", name="You are signed out")).to_be_visible()
    await check_accessibility(patient, problems)
    await patient.go_back()
    await expect(patient.get_by_text("Your secure session has ended")).to_be_visible()
    assert SUBJECT not in await patient.content()
    assert REPLY not in await patient.content()

    assert problems == {}
    await patient_context.close()
    await office_context.close()
