"""Steps the browser tests share: an office member signed in on a page of their own, and
axe-core's findings gathered state by state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.browser.conftest import DESKTOP, PHONE, serious_accessibility_problems
from tests.conftest import STAFF_PASSWORD


@dataclass(frozen=True)
class Device:
    viewport: ViewportSize
    is_mobile: bool


AT_A_DESK = Device(DESKTOP, is_mobile=False)
ON_A_PHONE = Device(PHONE, is_mobile=True)
# A test that takes ``device: Device`` runs once on each.
ON_PHONE_AND_DESK = pytest.mark.parametrize(
    "device", [ON_A_PHONE, AT_A_DESK], ids=["phone", "desktop"]
)


async def log_in(page: Page, email: str, password: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()


@asynccontextmanager
async def signed_in_page(
    chromium: Browser,
    base_url: str,
    email: str,
    *,
    device: Device = AT_A_DESK,
    java_script_enabled: bool = True,
) -> AsyncIterator[Page]:
    """A browser of its own on ``base_url``, logged in as ``email`` with the tests' password
    and showing the Main Menu; closed at the end."""
    context = await chromium.new_context(
        viewport=device.viewport,
        is_mobile=device.is_mobile,
        base_url=base_url,
        java_script_enabled=java_script_enabled,
    )
    try:
        page = await context.new_page()
        await log_in(page, email, STAFF_PASSWORD)
        await expect(page.get_by_role("heading", name="Main Menu")).to_be_visible()
        yield page
    finally:
        await context.close()


class AccessibilityLog:
    """axe-core's serious and critical problems, by the state of the page they were found in."""

    def __init__(self) -> None:
        self.problems: dict[str, object] = {}

    async def check(self, page: Page, state: str) -> None:
        if found := await serious_accessibility_problems(page):
            self.problems[state] = found
