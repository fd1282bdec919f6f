"""Office pages: log-in, Main Menu, patient directory and settings forms."""

from __future__ import annotations

import httpx

from tests.conftest import STAFF_PASSWORD, Office
from tests.fixtures.forms import settings_form
from web.cookies import STAFF_COOKIE


async def test_office_pages_redirect_to_login_when_signed_out(anonymous: httpx.AsyncClient) -> None:
    for path in ("/", "/patients", "/settings"):
        response = await anonymous.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"


async def test_log_in_refuses_wrong_password_and_unknown_account(
    office: Office, anonymous: httpx.AsyncClient
) -> None:
    wrong = await anonymous.post("/login", data={"email": office.email, "password": "guess"})
    unknown = await anonymous.post(
        "/login", data={"email": "nobody@example.com", "password": STAFF_PASSWORD}
    )
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "do not match an office account" in response.text
        assert STAFF_COOKIE not in response.cookies
    assert office.email in wrong.text  # what was typed is kept


async def test_main_menu_shows_practice(office: Office) -> None:
    response = await office.browser.get("/")
    assert response.status_code == 200
    assert "Main Menu" in response.text
    assert "Smile Dental" in response.text


async def test_log_out_ends_session_on_server(office: Office, anonymous: httpx.AsyncClient) -> None:
    cookie = office.browser.cookies[STAFF_COOKIE]
    await office.browser.post("/logout")
    # A copy of the old cookie no longer opens anything.
    anonymous.cookies.set(STAFF_COOKIE, cookie)
    assert (await anonymous.get("/")).status_code == 303


async def test_add_patient_form(office: Office) -> None:
    response = await office.browser.post(
        "/patients", data={"name": "Ada Lovelace", "email": "ada@example.com", "status": "Patient"}
    )
    assert response.status_code == 303
    page = await office.browser.post("/patients/search", data={"q": "ada"})
    assert "Ada Lovelace" in page.text


async def test_add_patient_form_keeps_input_on_errors(office: Office) -> None:
    response = await office.browser.post(
        "/patients", data={"name": "  ", "email": "ada-at-example", "status": "Patient"}
    )
    assert response.status_code == 422
    assert "Name is required" in response.text
    assert "enter a valid email address" in response.text
    assert 'value="ada-at-example"' in response.text
    listing = await office.api.get("/api/v1/patients")
    assert listing.json() == {"items": []}


async def test_add_patient_form_refuses_unknown_status_and_asks_about_a_shared_address(
    office: Office,
) -> None:
    bad_status = await office.browser.post(
        "/patients", data={"name": "Ada", "email": "ada@example.com", "status": "Former"}
    )
    assert bad_status.status_code == 422
    assert "choose one of the listed options" in bad_status.text
    await office.browser.post("/patients", data={"name": "Ada", "email": "ada@example.com"})
    duplicate = await office.browser.post(
        "/patients", data={"name": "Ada 2", "email": "ADA@example.com"}
    )
    assert duplicate.status_code == 409
    assert "is already used by Ada. Join Ada's family?" in duplicate.text


async def test_save_settings_form(office: Office) -> None:
    form = settings_form("Smile Dental North", "north@smile-dental.example", "10")
    response = await office.browser.post("/settings", data=form)
    assert response.status_code == 303
    practice = (await office.api.get("/api/v1/practice")).json()
    assert practice["name"] == "Smile Dental North"
    assert practice["expiry_days"] == 10


async def test_save_settings_form_refuses_bad_input(office: Office) -> None:
    before = (await office.api.get("/api/v1/practice")).json()
    unticked = settings_form("Smile", "a@b.example", "seven", secure_email_enabled=False)
    bad_days = await office.browser.post("/settings", data=unticked)
    assert bad_days.status_code == 422
    assert "whole number from 1 to 90" in bad_days.text
    no_sender = await office.browser.post("/settings", data=settings_form("Smile", ""))
    assert no_sender.status_code == 422
    assert "Enter a sender address before enabling Secure Email" in no_sender.text
    assert (await office.api.get("/api/v1/practice")).json() == before
