"""The pages the journey does not pass through, checked with axe-core too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import update

from infra.db.models import SecureEmail
from tests.browser.conftest import DESKTOP, PHONE, serious_accessibility_problems
from tests.conftest import STAFF_PASSWORD
from tests.fixtures.stack import Stack
from tests.web.test_portal import run_sql

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_remaining_pages_accessible(live_stack: Stack, chromium: Browser) -> None:
    stack = live_stack
    problems: dict[str, object] = {}
    office_context = await chromium.new_context(
        viewport=DESKTOP, base_url=stack.settings.public_url
    )
    office = await office_context.new_page()
    await office.goto("/login")
    await office.get_by_label("Email").fill(stack.office.email)
    await office.get_by_label("Password").fill(STAFF_PASSWORD)
    await office.get_by_role("button", name="Log in").click()
    await expect(office.get_by_role("heading", name="Main Menu")).to_be_visible()

    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    sent = await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "S", "body": "B"}
    )
    secure_email_id = sent.json()["id"]
    link = await stack.notice_url("ada@example.com")

    for path in (
        "/settings",
        "/settings/clinics",
        "/audit",
        f"/secure-emails/{secure_email_id}",
        "/no-such-page",
    ):
        await office.goto(path)
        if found := await serious_accessibility_problems(office):
            problems[path] = found
    # A form shown again with its errors.
    await office.goto("/settings")
    await office.get_by_label("Days until a secure email expires").fill("soon")
    await office.get_by_role("button", name="Save settings").click()
    await expect(office.get_by_text("whole number from 1 to 90")).to_be_visible()
    if found := await serious_accessibility_problems(office):
        problems["settings with errors"] = found

    # The clinics page's form shown again with its errors.
    await office.goto("/settings/clinics")
    await office.get_by_label("Phone").fill("call us")
    await office.get_by_role("button", name="Add clinic").click()
    await expect(office.get_by_text("Phone: Enter a phone number")).to_be_visible()
    if found := await serious_accessibility_problems(office):
        problems["clinics with errors"] = found

    await run_sql(
        stack,
        update(SecureEmail)
        .where(SecureEmail.id == secure_email_id)
        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)),
    )
    patient = await (await chromium.new_context(viewport=PHONE, is_mobile=True)).new_page()
    await patient.goto(link)
    await expect(
        patient.get_by_role("heading", name="This secure email has expired")
    ).to_be_visible()
    if found := await serious_accessibility_problems(patient):
        problems["expired"] = found
    await patient.goto(f"{stack.settings.public_url}/m/not-a-token")
    if found := await serious_accessibility_problems(patient):
        problems["bad link"] = found

    assert problems == {}
