"""The clinic filter of the office's lists: the Email Client's Inbox and Sent, the Main
Menu's alerts (and their live feed), ``GET /api/v1/secure-emails?clinic_id=``. Each
shows what concerns the patients one clinic has now; a clinic not on the list (another
practice's, or one a restricted clerk does not work for) is refused in words; a practice
without clinics sees no filter at all."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from starlette.requests import Request

from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.threads import Patient, patient_with_a_reply
from tests.web.test_api_clinics import add_clinic
from tests.web.test_staff import add_member
from web.office import alerts


@dataclass(frozen=True)
class Clinics:
    downtown: str
    uptown: str
    ana: Patient  # Downtown's
    bo: Patient  # Uptown's
    cy: Patient  # of no clinic


@pytest.fixture
async def clinics(settings: Settings, office: Office) -> Clinics:
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    uptown = (await add_clinic(office, name="Uptown"))["id"]
    return Clinics(
        downtown,
        uptown,
        await patient_with_a_reply(settings, office, "Ana Downtown", downtown),
        await patient_with_a_reply(settings, office, "Bo Uptown", uptown),
        await patient_with_a_reply(settings, office, "Cy Nowhere", None),
    )


def names_on(page: str) -> set[str]:
    return {name for name in ("Ana Downtown", "Bo Uptown", "Cy Nowhere") if name in page}


async def test_sent_api_filters_by_the_patients_clinic(office: Office, clinics: Clinics) -> None:
    async def patients(**query: str) -> set[str]:
        listed = await office.api.get("/api/v1/secure-emails", params=query)
        assert listed.status_code == 200, listed.text
        return {item["patient_id"] for item in listed.json()["items"]}

    assert await patients() == {clinics.ana.id, clinics.bo.id, clinics.cy.id}
    assert await patients(clinic_id=clinics.downtown) == {clinics.ana.id}
    assert await patients(clinic_id=clinics.uptown) == {clinics.bo.id}
    # The patient's clinic now: Ana moved to Uptown takes her secure email along.
    moved = await office.api.patch(
        f"/api/v1/patients/{clinics.ana.id}", json={"clinic_id": clinics.uptown}
    )
    assert moved.status_code == 200
    assert await patients(clinic_id=clinics.uptown) == {clinics.ana.id, clinics.bo.id}
    assert await patients(clinic_id=clinics.downtown) == set()


@pytest.mark.parametrize("clinic_id", ["no-such-clinic", "other"])
async def test_sent_api_refuses_a_clinic_not_of_the_practice(
    office: Office, other_office: Office, clinics: Clinics, clinic_id: str
) -> None:
    if clinic_id == "other":
        clinic_id = (await add_clinic(other_office, name="Their Clinic"))["id"]
    refused = await office.api.get("/api/v1/secure-emails", params={"clinic_id": clinic_id})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-1] == "clinic_id"
    assert refused.json()["detail"][0]["msg"] == "There is no such clinic in this practice"


async def test_a_restricted_clerk_filters_only_by_their_clinics(
    app: FastAPI, settings: Settings, office: Office, clinics: Clinics
) -> None:
    clerk = await add_member(app, settings, office.practice_id)
    await office.api.patch(f"/api/v1/staff/{clerk.id}", json={"clinic_ids": [clinics.downtown]})
    theirs = await clerk.api.get("/api/v1/secure-emails", params={"clinic_id": clinics.downtown})
    assert {item["patient_id"] for item in theirs.json()["items"]} == {clinics.ana.id}
    other = await clerk.api.get("/api/v1/secure-emails", params={"clinic_id": clinics.uptown})
    assert other.status_code == 422
    menu = await clerk.browser.get("/")
    assert re.search(r'<option value="[^"]+"[^>]*>Downtown</option>', menu.text)
    assert ">Uptown</option>" not in menu.text
    assert (await clerk.browser.get(f"/email-client?clinic={clinics.uptown}")).status_code == 422


async def test_email_client_inbox_and_sent_filter_by_clinic(
    office: Office, clinics: Clinics
) -> None:
    browser = office.browser
    inbox = await browser.get("/email-client")
    assert names_on(inbox.text) == {"Ana Downtown", "Bo Uptown", "Cy Nowhere"}
    assert '<label for="clinic">Clinic</label>' in inbox.text
    downtown = await browser.get(f"/email-client?clinic={clinics.downtown}")
    assert names_on(downtown.text) == {"Ana Downtown"}
    assert f'<option value="{clinics.downtown}" selected>' in downtown.text
    sent = await browser.get(f"/email-client/sent?clinic={clinics.uptown}")
    assert sent.status_code == 200
    assert names_on(sent.text.split("<table", 1)[1]) == {"Bo Uptown"}
    refused = await browser.get("/email-client/sent?clinic=no-such-clinic")
    assert refused.status_code == 422
    assert "Choose a clinic from the list" in refused.text and "<table" not in refused.text
    inbox_refused = await browser.get("/email-client?clinic=no-such-clinic")
    assert inbox_refused.status_code == 422
    assert "Choose a clinic from the list" in inbox_refused.text
    assert names_on(inbox_refused.text) == set()


async def test_main_menu_alerts_filter_by_clinic_and_the_feed_keeps_it(
    app: FastAPI, office: Office, clinics: Clinics
) -> None:
    menu = await office.browser.get(f"/?clinic={clinics.uptown}")
    assert menu.status_code == 200
    assert names_on(menu.text) == {"Bo Uptown"}
    assert f'data-stream="/alerts/stream?clinic={clinics.uptown}"' in menu.text
    assert re.search(r'id="alert-count">1<', menu.text)
    everyone = await office.browser.get("/")
    assert names_on(everyone.text) == {"Ana Downtown", "Bo Uptown", "Cy Nowhere"}
    refused = await office.browser.get("/?clinic=no-such-clinic")
    assert refused.status_code == 422
    assert "choose a clinic from the list" in refused.text
    assert names_on(refused.text) == set() and "data-stream" not in refused.text


async def test_live_feed_of_one_clinic(app: FastAPI, office: Office, clinics: Clinics) -> None:
    """The feed's first event, as the Main Menu's script receives it."""
    state = app.state.app_state
    request = _stream_request(app, office, f"clinic={clinics.downtown}")
    found = await alerts._snapshot(state, request)
    assert found is not None
    assert "Ana Downtown" in found[1] and "Bo Uptown" not in found[1]
    assert '"count":1' in found[1]


def _stream_request(app: FastAPI, office: Office, query: str) -> Request:
    """The feed's request as the office's browser sends it: its cookies, the page's query."""
    cookies = "; ".join(f"{c.name}={c.value}" for c in office.browser.cookies.jar)
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/alerts/stream",
            "query_string": query.encode(),
            "headers": [(b"cookie", cookies.encode())],
            "client": ("10.0.0.1", 5000),
            "app": app,
        }
    )


async def test_a_practice_without_clinics_sees_no_clinic_filter(office: Office) -> None:
    for url in ("/", "/email-client", "/email-client/sent"):
        page = await office.browser.get(url)
        assert page.status_code == 200, url
        assert 'name="clinic"' not in page.text, url
