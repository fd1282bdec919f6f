"""Every form POST needs the CSRF token of the browser that loaded the form."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.conftest import STAFF_PASSWORD, Office, some_client_address
from web.csrf import CSRF_COOKIE


def plain_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(some_client_address(), 1)),
        base_url="http://portal.test",
    )


async def test_form_post_without_token_refused(app: FastAPI, office: Office) -> None:
    async with plain_client(app) as forged:
        login = await forged.post(
            "/login", data={"email": office.email, "password": STAFF_PASSWORD}
        )
        assert login.status_code == 403
        assert "did not come from this site" in login.text
        # A signed-in browser tricked into posting by another site: the cookie rides along,
        # the token does not.
        forged.cookies.set("staff_session", office.browser.cookies["staff_session"])
        added = await forged.post("/patients", data={"name": "Mallory", "email": "m@example.com"})
        assert added.status_code == 403
        wrong = await forged.post(
            "/patients",
            data={"name": "Mallory", "email": "m@example.com", "csrf_token": "guess"},
        )
        assert wrong.status_code == 403
    listing = await office.api.get("/api/v1/patients")
    assert listing.json() == {"items": []}


async def test_form_token_from_page_accepted(app: FastAPI, office: Office) -> None:
    async with plain_client(app) as browser:
        page = await browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token and browser.cookies[CSRF_COOKIE] == token.group(1)
        login = await browser.post(
            "/login",
            data={"email": office.email, "password": STAFF_PASSWORD, "csrf_token": token.group(1)},
        )
        assert login.status_code == 303


async def test_api_needs_no_csrf_token(office: Office) -> None:
    response = await office.api.post(
        "/api/v1/patients", json={"name": "Ada", "email": "ada@example.com"}
    )
    assert response.status_code == 201
