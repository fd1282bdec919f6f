"""A family of three at one address, its whole lifecycle in a real browser.

The office (the practice's admin, signed in through the log-in page) adds John Smith and,
at his address, Emma and Liam Smith, each with "Join the family"; it sends each of them a
secure email from their compose page (Send Secure, all three through the pages). The
family, on a phone, opens the link of the notice of the second message (Emma's), asks for
a passcode and verifies it once: the Inbox shows all three, each marked "For <first
name>"; shown by person, Emma's alone, then everyone's again. Reply All to Emma's with a
PDF, Sign Out. The office's alert names Emma, her chart lists the file, and John's and
Liam's charts have nothing. The family's Inbox (all three, and Emma's alone), its message
page and the office's reply page pass axe-core.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, FilePayload, Page, expect

from tests.browser.pages import ON_A_PHONE, AccessibilityLog, signed_in_page
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HOME = "smithfam@example.com"
# The family in the order the office adds them and sends to them: (name, subject, body).
FAMILY = [
    ("John Smith", "Your crown", "The crown is ready to fit."),
    ("Emma Smith", "Your braces", "Brackets go on Monday at nine."),
    ("Liam Smith", "Your check-up", "No cavities; see you in six months."),
]
REPLY = "Monday suits us. The school's form is attached."
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 50


async def add_to_the_family(office: Page, name: str, holders: str) -> None:
    """Adds ``name`` at HOME, which ``holders`` already use, joining John Smith's family."""
    await office.get_by_label("Name", exact=True).fill(name)
    await office.get_by_label("Email", exact=True).fill(HOME)
    await office.get_by_role("button", name="Add patient").click()
    await expect(office.get_by_role("alert")).to_contain_text(
        f"{name}'s address {HOME} is already used by {holders}. Join John Smith's family?"
    )
    await office.get_by_role("button", name="Join the family").click()
    await expect(office.get_by_text("Patient added.")).to_be_visible()


async def send_secure(office: Page, name: str, subject: str, body: str) -> None:
    await office.goto("/patients")
    await office.get_by_role("link", name=f"Email {name}", exact=True).click()
    await office.get_by_label("Subject").fill(subject)
    await office.get_by_label("Body").fill(body)
    await office.get_by_role("button", name="Send Secure").click()
    await expect(office.get_by_text("Sent.")).to_be_visible()


async def chart_of(office: Page, name: str) -> Page:
    await office.goto("/patients")
    await office.get_by_role("link", name=f"Chart of {name}", exact=True).click()
    await expect(office.get_by_role("heading", name=f"Chart: {name}")).to_be_visible()
    return office


async def test_a_family_of_three_reads_with_one_passcode_and_replies_to_one_chart(
    live_stack: Stack, chromium: Browser
) -> None:
    stack = live_stack
    accessibility = AccessibilityLog()
    async with signed_in_page(chromium, stack.settings.public_url, stack.office.email) as office:
        # 1. Three patients at one address: John, then Emma and Liam join his family.
        await office.goto("/patients")
        await office.get_by_label("Name", exact=True).fill("John Smith")
        await office.get_by_label("Email", exact=True).fill(HOME)
        await office.get_by_role("button", name="Add patient").click()
        await expect(office.get_by_text("Patient added.")).to_be_visible()
        await add_to_the_family(office, "Emma Smith", "John Smith")
        await add_to_the_family(office, "Liam Smith", "John Smith and Emma Smith")

        # 2. A secure email to each; the family's mailbox gets a notice for each in turn,
        # and the second one's link is the one the family opens.
        links: list[str] = []
        for sent, (name, subject, body) in enumerate(FAMILY, start=1):
            await send_secure(office, name, subject, body)
            await stack.mail_to(HOME, sent)
            links.append(await stack.notice_url(HOME))

        # 3. One link, one passcode, one Verify: the family's three messages.
        patient_context = await chromium.new_context(
            viewport=ON_A_PHONE.viewport, is_mobile=ON_A_PHONE.is_mobile
        )
        try:
            patient = await patient_context.new_page()
            await patient.goto(links[1])
            await patient.get_by_role("button", name="View Secure Email").click()
            # Three notices, then the passcode.
            await patient.get_by_label("Passcode").fill(await stack.passcode(HOME, 4))
            await patient.get_by_role("button", name="Verify").click()
            await expect(patient.get_by_role("heading", name="Your braces")).to_be_visible()
            await expect(patient.get_by_text("For Emma", exact=True)).to_be_visible()
            await expect(patient.get_by_text(FAMILY[1][2])).to_be_visible()
            await accessibility.check(patient, "Emma's message")

            await patient.get_by_role("link", name="Inbox").click()
            inbox = patient.get_by_role("main").get_by_role("listitem")
            await expect(inbox).to_have_count(3)
            for name, subject, _ in FAMILY:
                line = inbox.filter(has_text=subject)
                await expect(line).to_have_count(1)
                await expect(line.get_by_role("link")).to_contain_text(f"For {name.split()[0]}")
            await accessibility.check(patient, "the family's Inbox")

            # Filtered by person: Emma's message only, then everyone's again.
            people = patient.get_by_role("navigation", name="Show the secure emails of")
            await people.get_by_role("link", name="Emma", exact=True).click()
            await expect(people.get_by_role("link", name="Emma", exact=True)).to_have_attribute(
                "aria-current", "true"
            )
            await expect(inbox).to_have_count(1)
            await expect(inbox.get_by_text(FAMILY[1][1])).to_be_visible()
            for _, subject, _ in (FAMILY[0], FAMILY[2]):
                await expect(patient.get_by_text(subject)).to_have_count(0)
            await accessibility.check(patient, "the family's Inbox, Emma's only")
            await people.get_by_role("link", name="Everyone", exact=True).click()
            await expect(people.get_by_role("link", name="Everyone")).to_have_attribute(
                "aria-current", "true"
            )
            await expect(inbox).to_have_count(3)
            for _, subject, _ in FAMILY:
                await expect(inbox.get_by_text(subject)).to_be_visible()

            # 4. Reply All to Emma's message, with a PDF; then Sign Out.
            await patient.get_by_role("link", name="Your braces").click()
            await patient.get_by_role("link", name="Reply All").click()
            await expect(patient.get_by_label("Subject")).to_have_value("RE: Your braces")
            await patient.get_by_label("Your message").fill(REPLY)
            await patient.get_by_label("Attachments").set_input_files(
                [FilePayload(name="school-form.pdf", mimeType="application/pdf", buffer=PDF)]
            )
            await patient.get_by_role("button", name="Send reply").click()
            await expect(patient.get_by_text("Your reply was sent")).to_be_visible()
            await patient.get_by_text("Menu").click()
            await patient.get_by_role("button", name="Sign Out").click()
            await expect(patient.get_by_role("heading", name="You are signed out")).to_be_visible()
        finally:
            await patient_context.close()

        # 5. The office: the alert names Emma, and only her chart has the file.
        await office.goto("/")
        alerts = office.get_by_role("region", name="Alerts")
        await expect(
            alerts.get_by_role("link", name="New secure email reply from Emma Smith")
        ).to_be_visible(timeout=15_000)
        await expect(alerts.get_by_role("listitem")).to_have_count(1)
        await alerts.get_by_role("link", name="New secure email reply from Emma Smith").click()
        await expect(office.get_by_text(REPLY)).to_be_visible()
        await expect(office.get_by_text(f"Emma Smith <{HOME}>")).to_be_visible()
        await accessibility.check(office, "the office's reply page")
        await office.get_by_role("link", name="Emma Smith's chart").click()
        await expect(office.get_by_role("heading", name="Chart: Emma Smith")).to_be_visible()
        await expect(office.get_by_role("link", name="school-form.pdf")).to_be_visible()
        await expect(office.get_by_role("link", name="Your braces")).to_be_visible()
        for name in ("John Smith", "Liam Smith"):
            chart = await chart_of(office, name)
            await expect(chart.get_by_text("No files yet.")).to_be_visible()
            await expect(chart.get_by_role("link", name="school-form.pdf")).to_have_count(0)
    assert accessibility.problems == {}
