"""The Staff and API tokens pages in a real browser, as an office admin uses them, and the
page a new staff member meets at first log-in; each state checked with axe-core."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.pages import AccessibilityLog
from tests.browser.pages import log_in as log_in  # test_office_changes_page imports it from here
from tests.conftest import STAFF_PASSWORD, Office

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_admin_manages_staff_and_tokens(
    live_app: str, chromium: Browser, office: Office
) -> None:
    accessibility = AccessibilityLog()

    admin_context = await chromium.new_context(viewport=DESKTOP, base_url=live_app)
    admin = await admin_context.new_page()
    await log_in(admin, office.email, STAFF_PASSWORD)
    await expect(admin.get_by_role("heading", name="Main Menu")).to_be_visible()

    office_nav = admin.get_by_role("navigation", name="Office")
    await office_nav.get_by_role("link", name="Staff").click()
    await expect(admin.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
    await expect(admin.get_by_role("cell", name=office.email)).to_be_visible()
    await accessibility.check(admin, "staff")

    # A mistake first: the form comes back with the error by its field.
    await admin.get_by_label("Name").fill("Grace Hopper")
    await admin.get_by_label("Email").fill("grace-at-example")
    await admin.get_by_role("button", name="Add staff member").click()
    await expect(admin.get_by_text("Nobody was added")).to_be_visible()
    await expect(admin.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    await accessibility.check(admin, "staff with errors")

    grace = f"grace-{uuid.uuid4().hex[:6]}@smile-dental.example"
    await admin.get_by_label("Email").fill(grace)
    await admin.get_by_label("Role").select_option(label="Clerk")
    await admin.get_by_role("button", name="Add staff member").click()
    await expect(
        admin.get_by_role("heading", name="Temporary password for Grace Hopper")
    ).to_be_visible()
    temporary = (await admin.locator("#temporary-password").inner_text()).strip()
    assert len(temporary) >= 12
    row = admin.get_by_role("row").filter(has_text=grace)
    await expect(row.get_by_role("cell", name="Active, must choose a password")).to_be_visible()
    await accessibility.check(admin, "staff with a temporary password")

    await row.get_by_role("button", name="Make administrator Grace Hopper").click()
    await expect(admin.get_by_role("status").filter(has_text="Role changed")).to_be_visible()
    row = admin.get_by_role("row").filter(has_text=grace)
    await expect(row.get_by_role("cell", name="Administrator", exact=True)).to_be_visible()

    # Grace steps back to clerk; the office admin, now the last one, cannot leave.
    me = admin.get_by_role("row").filter(has_text=office.email)
    await row.get_by_role("button", name="Make clerk Grace Hopper").click()
    await me.get_by_role("button", name="Deactivate").click()
    await expect(admin.get_by_role("alert")).to_contain_text("last active administrator")
    await accessibility.check(admin, "staff refusal")

    await office_nav.get_by_role("link", name="API tokens").click()
    await expect(admin.get_by_role("heading", name="API tokens")).to_be_visible()
    await accessibility.check(admin, "tokens")
    await admin.get_by_label("Label").fill("Open Dental sync")
    await admin.get_by_label("Acts as").select_option(label="Grace Hopper (clerk)")
    await admin.get_by_label("Expires").select_option(label="90 days")
    await admin.get_by_role("button", name="Create token").click()
    await expect(admin.get_by_role("heading", name="New token: Open Dental sync")).to_be_visible()
    token = (await admin.locator("#new-token").inner_text()).strip()
    token_row = admin.get_by_role("row").filter(has_text="Open Dental sync")
    await expect(token_row.get_by_role("cell", name="Grace Hopper")).to_be_visible()
    await expect(token_row.get_by_role("cell", name="Never")).to_be_visible()  # last used
    await accessibility.check(admin, "tokens with a new token")
    await admin.goto("/tokens")
    assert token not in await admin.content()

    await token_row.get_by_role("button", name="Revoke Open Dental sync").click()
    await expect(admin.get_by_role("status").filter(has_text="Token revoked")).to_be_visible()
    token_row = admin.get_by_role("row").filter(has_text="Open Dental sync")
    await expect(token_row.get_by_role("cell", name="Revoked")).to_be_visible()

    # The new clerk, on a phone: a password of their own before anything else.
    phone = await chromium.new_context(viewport=PHONE, is_mobile=True, base_url=live_app)
    newcomer = await phone.new_page()
    await log_in(newcomer, grace, temporary)
    await expect(newcomer.get_by_role("heading", name="Choose your password")).to_be_visible()
    await newcomer.goto("/patients")
    await expect(newcomer.get_by_role("heading", name="Choose your password")).to_be_visible()
    await accessibility.check(newcomer, "change password")
    await newcomer.get_by_label("Current password").fill(temporary)
    await newcomer.get_by_label("New password", exact=True).fill("four unrelated words here")
    await newcomer.get_by_label("New password again").fill("four unrelated words there")
    await newcomer.get_by_role("button", name="Change password").click()
    await expect(newcomer.get_by_text("do not match")).to_be_visible()
    await accessibility.check(newcomer, "change password with errors")
    await newcomer.get_by_label("Current password").fill(temporary)
    await newcomer.get_by_label("New password", exact=True).fill("four unrelated words here")
    await newcomer.get_by_label("New password again").fill("four unrelated words here")
    await newcomer.get_by_role("button", name="Change password").click()
    await expect(newcomer.get_by_role("heading", name="Main Menu")).to_be_visible()

    await phone.close()
    await admin_context.close()
    assert accessibility.problems == {}
