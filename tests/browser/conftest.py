"""A real browser: Debian's Chromium driven by Playwright, with axe-core for accessibility.

Playwright's own browser downloads do not work here; Chromium comes from Debian
(``make test`` installs it) and axe-core from npm (``tests/browser/package.json``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from tests.fixtures.stack import app_server, serving

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=900)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield browser
        await browser.close()


@pytest.fixture
async def live_app(app: FastAPI) -> AsyncIterator[str]:
    """The app (its lifespan already run by the ``app`` fixture) on a real port, for pages
    that need no Temporal, object store or mail."""
    async with serving(app_server(app)) as url:
        yield url


async def serious_accessibility_problems(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` runs npm ci in tests/browser")
    # Evaluated through the DevTools protocol, which the page's strict CSP (rightly)
    # would refuse as an added <script>; the page itself keeps its CSP.
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
