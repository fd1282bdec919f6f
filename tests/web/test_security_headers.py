"""Every response carries the hardening headers; PHI pages are never cached."""

from __future__ import annotations

import httpx

from tests.conftest import Office


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
