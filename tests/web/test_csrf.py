"""Every form POST needs the CSRF token of the browser that loaded the form."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import STAFF_PASSWORD, Office, some_client_address
from web.cookies import CSRF_COOKIE


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
        # The form carries a MAC of the cookie, not the cookie (web.csrf).
        assert token and browser.cookies[CSRF_COOKIE] not in ("", token.group(1))
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


# Multipart forms (Send Secure, Reply All): the token is checked on the form's first part,
# before the rest of the body is read; our pages put the hidden token field first.

NOT_A_FILE = [("note", ("note.txt", b"not needed", "text/plain"))]  # makes httpx send multipart


async def test_multipart_form_with_token_first_accepted(app: FastAPI, office: Office) -> None:
    async with plain_client(app) as browser:
        page = await browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        login = await browser.post(
            "/login",
            data={"csrf_token": token.group(1), "email": office.email, "password": STAFF_PASSWORD},
            files=NOT_A_FILE,
        )
        assert login.status_code == 303


@pytest.mark.parametrize(
    ("fields", "files"),
    [
        ({"email": "someone@example.com", "csrf_token": "TOKEN"}, NOT_A_FILE),  # not first
        ({"csrf_token": "guess", "email": "someone@example.com"}, NOT_A_FILE),  # not ours
        ({}, [("csrf_token", ("csrf_token", b"TOKEN", "text/plain"))]),  # a file, not a field
    ],
)
async def test_multipart_form_without_token_first_refused(
    app: FastAPI, fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]
) -> None:
    async with plain_client(app) as browser:
        page = await browser.get("/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found
        token = found.group(1)  # the right token, in the wrong place
        data = {name: token if value == "TOKEN" else value for name, value in fields.items()}
        files = [(name, (filename, token.encode(), kind)) for name, (filename, _, kind) in files]
        refused = await browser.post("/login", data=data, files=files)
        assert refused.status_code == 403
        assert "did not come from this site" in refused.text


async def test_office_forms_put_the_token_first(office: Office) -> None:
    """Browsers send fields in the page's order: the hidden token must come first."""
    patient = await office.api.post(
        "/api/v1/patients", json={"name": "Ada", "email": "ada@example.com"}
    )
    page = await office.browser.get(f"/patients/{patient.json()['id']}/compose")
    form = page.text.split('enctype="multipart/form-data"', 1)[1]
    first_field = re.search(r"<(input|textarea|select)\b[^>]*>", form)
    assert first_field and 'name="csrf_token"' in first_field.group(0)
