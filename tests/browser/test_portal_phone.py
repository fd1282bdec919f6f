"""The patient's portal on a 390 px phone: the passcode step (a numeric one-time-code
field, Verify and "Send me a new code" as two separate full buttons), the Inbox with an
expired message listed and Sign Out on one line, and Reply All with the original quoted;
no page scrolls sideways and axe-core finds nothing serious on any."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail
from infra.security import new_token, token_hash
from infra.settings import Settings
from tests.browser.pages import ON_A_PHONE, AccessibilityLog
from tests.conftest import Office
from tests.fixtures.rows import portal_session_token
from tests.web.test_sent_box import BODY, add_patient, record_sent
from web.cookies import PORTAL_COOKIE, cookie_name

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SUBJECT = "Your crown"


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= ON_A_PHONE.viewport["width"], f"{page.url} is {width} px wide"


async def give_link(settings: Settings, secure_email_id: str) -> str:
    """A View Secure Email link's token for the message (only its hash is stored)."""
    token = new_token()
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == secure_email_id)
            .values(link_token_hash=token_hash(token))
        )
        await db.commit()
    await engine.dispose()
    return token


async def test_portal_on_a_phone(
    live_app: str, chromium: Browser, office: Office, settings: Settings
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    now = datetime.now(UTC)
    message = await record_sent(settings, office, ada, now - timedelta(hours=1), subject=SUBJECT)
    expired = await record_sent(
        settings, office, ada, now - timedelta(days=9), subject="Old x-rays"
    )
    link = await give_link(settings, message.id)
    accessibility = AccessibilityLog()
    context = await chromium.new_context(
        viewport=ON_A_PHONE.viewport, is_mobile=ON_A_PHONE.is_mobile, base_url=live_app
    )
    try:
        page = await context.new_page()

        # The passcode step.
        await page.goto(f"/m/{link}/passcode")
        await expect(page.get_by_text("We emailed an 8-digit code to")).to_contain_text("•••@")
        code = page.get_by_label("Passcode")
        await expect(code).to_have_attribute("inputmode", "numeric")
        await expect(code).to_have_attribute("autocomplete", "one-time-code")
        verify = page.get_by_role("button", name="Verify")
        new_code = page.get_by_role("button", name="Send me a new code")
        # Two forms, one button each, both full size, and not on top of each other.
        verify_form = verify.locator("xpath=ancestor::form")
        new_code_form = new_code.locator("xpath=ancestor::form")
        await expect(verify_form.get_by_role("button")).to_have_count(1)
        await expect(new_code_form.get_by_role("button")).to_have_count(1)
        assert await verify_form.get_attribute("action") == f"/m/{link}/verify"
        assert await new_code_form.get_attribute("action") == f"/m/{link}/passcode"
        verify_box, new_code_box = await verify.bounding_box(), await new_code.bounding_box()
        assert verify_box is not None and new_code_box is not None
        assert new_code_box["width"] == verify_box["width"] >= 300
        assert new_code_box["height"] >= 44 and verify_box["height"] >= 44
        assert new_code_box["y"] >= verify_box["y"] + verify_box["height"] + 24
        await no_sideways_scroll(page)
        await accessibility.check(page, "passcode")
        # Letters are refused in words, the field marked, what to do still said.
        await code.fill("1234 abcd")
        await verify.click()
        await expect(page.get_by_role("alert")).to_have_text(
            "Enter the 8-digit passcode from the email."
        )
        await expect(page.get_by_label("Passcode")).to_have_attribute("aria-invalid", "true")
        await no_sideways_scroll(page)
        await accessibility.check(page, "passcode refused")

        # Signed in (as Verify leaves the patient): the Inbox.
        await context.add_cookies(
            [
                {
                    "name": cookie_name(settings, PORTAL_COOKIE),
                    "value": await portal_session_token(settings, ada, message.id),
                    "url": live_app,
                }
            ]
        )
        await page.goto("/portal")
        await expect(page.get_by_role("link", name=SUBJECT)).to_be_visible()
        await expect(
            page.get_by_text("Expired — call the office to have it sent again.")
        ).to_be_visible()
        assert expired.subject not in await page.content()
        await no_sideways_scroll(page)
        await accessibility.check(page, "inbox")
        await page.get_by_text("Menu").click()
        sign_out = page.get_by_role("button", name="Sign Out")
        await expect(sign_out).to_be_visible()
        # One line: the button's content box is no taller than one line of its text, and
        # the whole button is on the screen.
        lines = await sign_out.evaluate(
            """button => {
                const style = getComputedStyle(button);
                const content = button.clientHeight - parseFloat(style.paddingTop)
                    - parseFloat(style.paddingBottom);
                return content / parseFloat(style.lineHeight);
            }"""
        )
        assert 0.9 <= lines < 1.5, lines
        box = await sign_out.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        await no_sideways_scroll(page)
        await accessibility.check(page, "inbox, menu open")

        # The expired one opens its warning only.
        await page.get_by_role("link", name="A secure email sent on").click()
        await expect(
            page.get_by_role("heading", name="This secure email has expired")
        ).to_be_visible()
        assert expired.subject not in await page.content() and BODY not in await page.content()

        # Reply All: "Your message", the allowed files in words, the original quoted.
        await page.goto(f"/portal/messages/{message.id}/reply")
        await expect(page.get_by_label("Your message")).to_be_editable()
        await expect(
            page.get_by_text("Photos, PDF, Word or text files, up to 20 MB each.")
        ).to_be_visible()
        original = page.get_by_role("region", name="Original message from Smile Dental")
        await expect(original).to_contain_text(BODY)
        await expect(original.get_by_role("textbox")).to_have_count(0)
        await no_sideways_scroll(page)
        await accessibility.check(page, "reply")
    finally:
        await context.close()
    assert accessibility.problems == {}
