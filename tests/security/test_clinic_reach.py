"""A clerk restricted to one clinic works with that clinic's patients and the patients of
no clinic; every other patient of the practice, and all of theirs (messages, replies,
files, alerts), answers as another practice's would: 404, or absent from every list.

Written as the attack was first tried: a clerk of Downtown, with their API token and
their signed-in browser, reading, listing, changing and sending to an Uptown patient by
ids an admin or a colleague could have shown them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from domain.staff import StaffRole
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.stack import Stack
from tests.fixtures.threads import Patient, patient_with_a_reply
from tests.web.test_api_clinics import add_clinic
from tests.web.test_staff import Member, add_member
from web.services.sending import UNKNOWN_PATIENT


@dataclass(frozen=True)
class Practice:
    downtown: str
    uptown: str
    ana: Patient  # Downtown's
    bo: Patient  # Uptown's
    cy: Patient  # of no clinic
    clerk: Member  # restricted to Downtown


@pytest.fixture
async def practice(app: FastAPI, settings: Settings, office: Office) -> Practice:
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    uptown = (await add_clinic(office, name="Uptown"))["id"]
    ana = await patient_with_a_reply(settings, office, "Ana Downtown", downtown)
    bo = await patient_with_a_reply(settings, office, "Bo Uptown", uptown)
    cy = await patient_with_a_reply(settings, office, "Cy Nowhere", None)
    clerk = await add_member(app, settings, office.practice_id, role=StaffRole.CLERK)
    restricted = await office.api.patch(
        f"/api/v1/staff/{clerk.id}", json={"clinic_ids": [downtown]}
    )
    assert restricted.status_code == 200, restricted.text
    assert restricted.json()["clinic_ids"] == [downtown]
    return Practice(downtown, uptown, ana, bo, cy, clerk)


def ids(response: Any, field: str = "id") -> set[str]:
    assert response.status_code == 200, response.text
    return {item[field] for item in response.json()["items"]}


async def assert_not_found(client: Any, urls: Iterable[str], *unseen: str) -> None:
    """Each URL, read with GET, answers 404 showing none of ``unseen`` (the patient's
    name, a subject): as another practice's patient would."""
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 404, url
        for text in unseen:
            assert text not in response.text, url


async def test_restricted_clerk_api_reads_of_another_clinics_patient_are_404(
    practice: Practice,
) -> None:
    api, bo = practice.clerk.api, practice.bo
    patient, message = f"/api/v1/patients/{bo.id}", f"/api/v1/secure-emails/{bo.secure_email_id}"
    await assert_not_found(api, (patient, f"{patient}/chart", message), bo.name, "For Bo")
    assert (await api.get("/api/v1/secure-emails", params={"patient_id": bo.id})).status_code == 404
    assert (await api.post(f"/api/v1/alerts/{bo.alert_id}/ack")).status_code == 404


async def test_restricted_clerk_lists_only_their_clinics_and_no_clinics_patients(
    practice: Practice, office: Office
) -> None:
    api = practice.clerk.api
    within = {practice.ana.id, practice.cy.id}
    assert ids(await api.get("/api/v1/patients")) == within
    assert ids(await api.get("/api/v1/patients", params={"q": "Bo"})) == set()
    assert ids(await api.get("/api/v1/secure-emails"), "patient_id") == within
    assert ids(await api.get("/api/v1/alerts"), "patient_id") == within
    # The admin, not restricted, sees the whole practice.
    everyone = within | {practice.bo.id}
    assert ids(await office.api.get("/api/v1/patients")) == everyone
    assert ids(await office.api.get("/api/v1/alerts"), "patient_id") == everyone


async def test_restricted_clerk_cannot_change_or_acknowledge_for_another_clinic(
    practice: Practice, office: Office
) -> None:
    api, bo = practice.clerk.api, practice.bo
    renamed = await api.patch(f"/api/v1/patients/{bo.id}", json={"name": "Mallory"})
    assert renamed.status_code == 404
    # Bo's alert is still open for the admin: the clerk's ack did nothing.
    await api.post(f"/api/v1/alerts/{bo.alert_id}/ack")
    assert bo.alert_id in ids(await office.api.get("/api/v1/alerts"))
    assert (await office.api.get(f"/api/v1/patients/{bo.id}")).json()["name"] == "Bo Uptown"


async def test_restricted_clerk_adds_and_moves_patients_only_within_their_clinics(
    practice: Practice, office: Office
) -> None:
    api = practice.clerk.api
    refused = await api.post(
        "/api/v1/patients",
        json={"name": "Dee", "email": "dee@example.com", "clinic_id": practice.uptown},
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "clinic_id"]
    moved = await api.patch(
        f"/api/v1/patients/{practice.ana.id}", json={"clinic_id": practice.uptown}
    )
    assert moved.status_code == 422
    ana = (await office.api.get(f"/api/v1/patients/{practice.ana.id}")).json()
    assert ana["clinic_id"] == practice.downtown
    added = await api.post(
        "/api/v1/patients",
        json={"name": "Dee", "email": "dee@example.com", "clinic_id": practice.downtown},
    )
    assert added.status_code == 201
    unassigned = await api.patch(f"/api/v1/patients/{practice.ana.id}", json={"clinic_id": None})
    assert unassigned.status_code == 200 and unassigned.json()["clinic_id"] is None


async def test_restricted_clerk_pages_of_another_clinics_patient_are_404(
    practice: Practice,
) -> None:
    browser, bo = practice.clerk.browser, practice.bo
    patient, message = f"/patients/{bo.id}", f"/secure-emails/{bo.secure_email_id}"
    pages = (
        f"{patient}/edit",
        f"{patient}/chart",
        f"{patient}/chart/{bo.document_id}",
        f"{patient}/compose",
        message,
        f"{message}/withdraw",
        f"/email-client/replies/{bo.reply_id}",
    )
    await assert_not_found(browser, pages, bo.name)
    for url in (f"{patient}/compose", f"{message}/withdraw", f"{message}/resend-notice"):
        assert (await browser.post(url, data={"subject": "Hi", "body": "Hi"})).status_code == 404


async def test_restricted_clerk_pages_list_only_patients_within_reach(practice: Practice) -> None:
    browser = practice.clerk.browser
    for url in ("/patients", "/email-client", "/email-client/sent", "/"):
        page = await browser.get(url)
        assert page.status_code == 200, url
        assert "Bo Uptown" not in page.text and "For Bo" not in page.text, url
    patients = (await browser.get("/patients")).text
    assert "Ana Downtown" in patients and "Cy Nowhere" in patients
    inbox = (await browser.get("/email-client")).text
    assert "Ana Downtown" in inbox and "Cy Nowhere" in inbox


async def test_lifting_the_restriction_shows_every_clinic_at_the_next_request(
    practice: Practice, office: Office
) -> None:
    api, bo = practice.clerk.api, practice.bo
    assert (await api.get(f"/api/v1/patients/{bo.id}")).status_code == 404
    lifted = await office.api.patch(f"/api/v1/staff/{practice.clerk.id}", json={"clinic_ids": []})
    assert lifted.status_code == 200 and lifted.json()["clinic_ids"] == []
    assert (await api.get(f"/api/v1/patients/{bo.id}")).status_code == 200
    assert (
        await practice.clerk.browser.get(f"/secure-emails/{bo.secure_email_id}")
    ).status_code == 200


async def test_restricted_clerk_cannot_send_to_another_clinics_patient(stack: Stack) -> None:
    """Send Secure, through Temporal: to a patient out of reach it is refused as for
    another practice's patient; to one of no clinic it goes."""
    office = stack.office
    uptown = (await add_clinic(office, name="Uptown"))["id"]
    clerk = await add_member(stack.app, stack.settings, office.practice_id)
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    assert (
        await office.api.patch(f"/api/v1/staff/{clerk.id}", json={"clinic_ids": [downtown]})
    ).status_code == 200
    bo = await office.api.post(
        "/api/v1/patients", json={"name": "Bo", "email": "bo@example.com", "clinic_id": uptown}
    )
    cy = await office.api.post("/api/v1/patients", json={"name": "Cy", "email": "cy@example.com"})
    message = {"subject": "Your visit", "body": "See you on Monday."}
    refused = await clerk.api.post(
        "/api/v1/secure-emails", data={"patient_id": bo.json()["id"], **message}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "patient_id"]
    assert refused.json()["detail"][0]["msg"] == UNKNOWN_PATIENT
    sent = await clerk.api.post(
        "/api/v1/secure-emails", data={"patient_id": cy.json()["id"], **message}
    )
    assert sent.status_code == 201, sent.text
    assert await stack.notice_link("cy@example.com")
    listed = (await office.api.get("/api/v1/secure-emails")).json()["items"]
    assert [item["patient_id"] for item in listed] == [cy.json()["id"]]


async def test_restricted_clerk_cannot_lift_their_own_restriction(
    practice: Practice, office: Office
) -> None:
    clerk = practice.clerk
    lifted = await clerk.api.patch(f"/api/v1/staff/{clerk.id}", json={"clinic_ids": []})
    assert lifted.status_code == 403
    page = await clerk.browser.post(f"/staff/{clerk.id}/clinics", data={})
    assert page.status_code == 403
    members = (await office.api.get("/api/v1/staff")).json()["items"]
    assert next(m for m in members if m["id"] == clerk.id)["clinic_ids"] == [practice.downtown]
    assert (await clerk.api.get(f"/api/v1/patients/{practice.bo.id}")).status_code == 404
