"""Every response carries the hardening headers; PHI pages are never cached."""

from __future__ import annotations

import httpx

from infra.settings import Settings
from tests.conftest import Office
from web.app import create_app


async def test_security_headers_on_pages_and_api(
    office: Office, anonymous: httpx.AsyncClient
) -> None:
    for response in (
        await anonymous.get("/login"),
        await office.browser.get("/patients"),
        await office.api.get("/api/v1/patients"),
        await anonymous.get("/m/unknown-token"),
    ):
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers  # plain http in tests


async def test_static_files_may_be_cached(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/static/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_hsts_and_secure_cookies_under_https(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"public_url": "https://smile.example"}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://smile.example"
        ) as browser,
    ):
        page = await browser.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "secure" in page.headers["set-cookie"].lower()  # the CSRF cookie
