"""Pages that need only the web app, in a real browser: ``/docs`` (Swagger UI under the
strict CSP, nothing fetched from anywhere but the app), the patient search (a POST:
the name typed never reaches the URL) and the Settings page's time zone and reminder."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Request, expect

from tests.browser.conftest import DESKTOP, serious_accessibility_problems
from tests.browser.pages import signed_in_page
from tests.conftest import Office

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_docs_work_under_the_strict_csp(live_app: str, chromium: Browser) -> None:
    context = await chromium.new_context(viewport=DESKTOP, base_url=live_app)
    # Every refusal of the page's CSP, as the page itself is told of it.
    await context.add_init_script(
        "window.refusedByCsp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.refusedByCsp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = await context.new_page()
    hosts: set[str] = set()

    def note_host(request: Request) -> None:
        if not request.url.startswith("data:"):
            hosts.add(urlsplit(request.url).netloc)

    page.on("request", note_host)

    await page.goto("/docs")
    await expect(page.get_by_role("heading", name=re.compile(r"^Secure Email"))).to_be_visible()
    operation = page.get_by_text("/api/v1/patients/{patient_id}").first
    await expect(operation).to_be_visible()
    await operation.click()  # opens the operation: Swagger UI renders its parameters
    await expect(page.get_by_text("patient_id").first).to_be_visible()

    assert await page.evaluate("window.refusedByCsp") == []
    assert hosts == {urlsplit(live_app).netloc}

    # The check above can see a refusal: an inline style is one under this CSP.
    await page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')"
    )
    await page.wait_for_function("window.refusedByCsp.length > 0", timeout=5000)
    await context.close()


async def test_patient_search_keeps_the_name_out_of_the_url(
    live_app: str, chromium: Browser, office: Office
) -> None:
    for name, email in (("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com")):
        added = await office.api.post("/api/v1/patients", json={"name": name, "email": email})
        assert added.status_code == 201
    problems: dict[str, object] = {}
    # With and without JavaScript: the search is a plain form.
    for javascript in (True, False):
        async with signed_in_page(
            chromium, live_app, office.email, java_script_enabled=javascript
        ) as page:
            await page.goto("/patients")
            await page.get_by_label("Search by name or email").fill("Lovelace")
            await page.get_by_role("button", name="Search").click()
            await expect(page.get_by_text("1 patient found")).to_be_visible()
            await expect(page.get_by_role("cell", name="Ada Lovelace", exact=True)).to_be_visible()
            await expect(page.get_by_role("cell", name="Grace Hopper", exact=True)).to_have_count(0)
            assert page.url == f"{live_app}/patients/search"
            await expect(page.get_by_label("Search by name or email")).to_have_value("Lovelace")
            if javascript and (found := await serious_accessibility_problems(page)):
                problems["search results"] = found

            await page.get_by_role("link", name="Show all patients").click()
            await expect(page.get_by_role("cell", name="Grace Hopper", exact=True)).to_be_visible()
    assert problems == {}


async def test_settings_page_saves_time_zone_and_reminder(
    live_app: str, chromium: Browser, office: Office
) -> None:
    async with signed_in_page(chromium, live_app, office.email) as page:
        await page.goto("/settings")
        zone = page.get_by_label("Time zone")
        reminder = page.get_by_label("Reminder after (hours)")
        await expect(zone).to_have_value("America/New_York")
        await expect(reminder).to_have_value("48")
        await expect(reminder).to_have_accessible_description(re.compile("0 turns reminders off"))
        problems = await serious_accessibility_problems(page)

        # Too late a reminder: refused, and what was chosen stays chosen.
        await zone.select_option("Asia/Tokyo")
        await reminder.fill("168")
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.get_by_role("alert").first).to_contain_text("Nothing was saved")
        await expect(page.get_by_text("at or after the expiry")).to_be_visible()
        await expect(zone).to_have_value("Asia/Tokyo")
        await expect(reminder).to_have_value("168")
        await expect(reminder).to_have_attribute("aria-invalid", "true")
        problems += await serious_accessibility_problems(page)

        await reminder.fill("24")
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.get_by_role("status")).to_have_text("Settings saved.")
        await expect(zone).to_have_value("Asia/Tokyo")
        await expect(reminder).to_have_value("24")
        practice = (await office.api.get("/api/v1/practice")).json()
        assert (practice["time_zone"], practice["reminder_after_hours"]) == ("Asia/Tokyo", 24)
    assert problems == []
