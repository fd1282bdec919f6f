"""The portal in Spanish and in English, on a phone and at a desk: every page's
``<html lang>``, the English | Español switch (it keeps the patient on the same page and
is remembered on the next), and axe-core on each page in each language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser as Chromium
from playwright.async_api import Locator, Page, expect
from sqlalchemy import update

from infra.db.models import SecureEmail
from tests.browser.pages import ON_PHONE_AND_DESK, AccessibilityLog, Device
from tests.fixtures.stack import Stack
from tests.web.test_portal import run_sql

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EMAIL = "ana@example.com"
SUBJECT = "Plan de tratamiento"
BODY = "Dos empastes, arriba a la izquierda."


async def in_language(page: Page, language: str, log: AccessibilityLog, state: str) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", language)
    await log.check(page, f"{state} ({language})")


# The switch's buttons, each in its own language.
SWITCH = {"en": "English", "es": "Español"}


async def switch_to(
    page: Page, language: str, shown: Locator, log: AccessibilityLog, state: str
) -> None:
    """Press the switch's button for ``language``: the same page comes back in it, with
    ``shown`` on it, and axe-core checks it."""
    before = page.url
    async with page.expect_navigation():
        await page.get_by_role("button", name=SWITCH[language], exact=True).click()
    assert page.url == before
    await expect(shown).to_be_visible()
    await in_language(page, language, log, state)


@ON_PHONE_AND_DESK
async def test_portal_in_both_languages(
    live_stack: Stack, chromium: Chromium, device: Device
) -> None:
    stack = live_stack
    log = AccessibilityLog()
    patient_id = await stack.add_patient("Ana García", EMAIL)
    secure_email_id = await stack.send_secure(patient_id, SUBJECT, BODY)
    link = await stack.notice_url(EMAIL)
    # Spanish from now on (the notice itself is the mail's business).
    changed = await stack.office.api.patch(
        f"/api/v1/patients/{patient_id}", json={"language": "es"}
    )
    assert changed.status_code == 200, changed.text

    # The browser asks for English; the patient reads Spanish, and the pages follow her.
    context = await chromium.new_context(
        viewport=device.viewport,
        is_mobile=device.is_mobile,
        base_url=stack.settings.public_url,
        locale="en-US",
    )
    patient = await context.new_page()
    try:
        await patient.goto(link)
        await expect(patient.get_by_role("heading", name="Tiene un correo seguro")).to_be_visible()
        await in_language(patient, "es", log, "link")
        await patient.get_by_role("button", name="Ver correo seguro").click()
        await expect(patient.get_by_label("Código de acceso")).to_be_visible()
        await in_language(patient, "es", log, "passcode")

        # The switch on the passcode page: the same page, in English, then back.
        await switch_to(patient, "en", patient.get_by_label("Passcode"), log, "passcode")
        await switch_to(patient, "es", patient.get_by_label("Código de acceso"), log, "passcode")

        await patient.get_by_label("Código de acceso").fill(await stack.passcode(EMAIL, 2))
        await patient.get_by_role("button", name="Verificar").click()
        await expect(patient.get_by_role("heading", name=SUBJECT)).to_be_visible()
        await expect(patient.get_by_role("link", name="Responder a todos")).to_be_visible()
        await in_language(patient, "es", log, "message")
        await patient.get_by_role("link", name="Bandeja de entrada").click()
        await expect(patient.get_by_role("heading", name="Bandeja de entrada")).to_be_visible()
        await in_language(patient, "es", log, "inbox")
        await patient.get_by_role("link", name=SUBJECT).click()
        await patient.get_by_role("link", name="Responder a todos").click()
        await expect(patient.get_by_label("Su mensaje")).to_be_visible()
        await in_language(patient, "es", log, "reply")

        # English from the reply page: the same page, and every page after it.
        await switch_to(patient, "en", patient.get_by_label("Your message"), log, "reply")
        await patient.get_by_role("link", name="Inbox").click()
        await expect(patient.get_by_role("heading", name="Inbox")).to_be_visible()
        await in_language(patient, "en", log, "inbox")
        await patient.get_by_role("link", name=SUBJECT).click()
        await expect(patient.get_by_role("link", name="Reply All")).to_be_visible()
        await in_language(patient, "en", log, "message")

        await patient.get_by_text("Menu", exact=True).click()
        await patient.get_by_role("button", name="Sign Out").click()
        await expect(patient.get_by_role("heading", name="You are signed out")).to_be_visible()
        await in_language(patient, "en", log, "signed out")
        signed_out = patient.get_by_role("heading", name="Ha cerrado la sesión")
        await switch_to(patient, "es", signed_out, log, "signed out")

        await run_sql(
            stack,
            update(SecureEmail)
            .where(SecureEmail.id == secure_email_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)),
        )
        await patient.goto(link)
        await expect(
            patient.get_by_role("heading", name="Este correo seguro ha vencido")
        ).to_be_visible()
        await in_language(patient, "es", log, "expired")
        expired = patient.get_by_role("heading", name="This secure email has expired")
        await switch_to(patient, "en", expired, log, "expired")
    finally:
        await context.close()
    assert log.problems == {}
