"""``/docs`` in a real browser: Swagger UI starts and lists the API while the page keeps the
strict CSP, and nothing is fetched from anywhere but the app."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Request, expect

from tests.browser.conftest import DESKTOP

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app (its lifespan already run by the fixture) on a real port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


async def test_docs_work_under_the_strict_csp(served: str, chromium: Browser) -> None:
    context = await chromium.new_context(viewport=DESKTOP, base_url=served)
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
    assert hosts == {urlsplit(served).netloc}

    # The check above can see a refusal: an inline style is one under this CSP.
    await page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')"
    )
    await page.wait_for_function("window.refusedByCsp.length > 0", timeout=5000)
    await context.close()
