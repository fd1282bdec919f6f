"""Patient searches, additions and changes are audited (R13), and what was typed into a
search stays out of the URL and out of the log: a patient's name is PHI."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.conftest import Office

SEARCH = "office.patient_search"
ADD = "office.patient_add"
EDIT = "office.patient_edit"


async def all_events_text(office: Office) -> str:
    response = await office.api.get("/api/v1/audit")
    return response.text


async def add(office: Office, name: str, email: str) -> str:
    created = await office.api.post("/api/v1/patients", json={"name": name, "email": email})
    assert created.status_code == 201, created.text
    patient_id: str = created.json()["id"]
    return patient_id


# Search -------------------------------------------------------------------------------


async def test_search_page_posts_the_query_and_audits_only_count_and_ids(office: Office) -> None:
    ada = await add(office, "Ada Lovelace", "ada@example.com")
    grace = await add(office, "Grace Hopper", "grace@example.com")

    page = await office.browser.get("/patients")
    form = re.search(r'<form method="post" action="/patients/search" role="search"', page.text)
    assert form is not None, "the search form is not a POST"
    assert '<label for="q">Search by name or email</label>' in page.text

    found = await office.browser.post("/patients/search", data={"q": "Lovelace"})
    assert found.status_code == 200
    assert "Ada Lovelace" in found.text and "Grace Hopper" not in found.text
    assert "1 patient found" in found.text
    assert "Lovelace" not in str(found.url)
    assert 'value="Lovelace"' in found.text  # the box keeps what was typed

    searches = await office.audit_events(action=SEARCH)
    # Each event names the patients the page listed, by id, in the order shown.
    assert [event["detail"] for event in searches] == [
        f"directory: 2 results; patients: {ada} {grace}",
        f"search: 1 result; patients: {ada}",
    ]
    assert all(event["actor_type"] == "staff" and event["client_address"] for event in searches)
    assert "Lovelace" not in await all_events_text(office)


async def test_search_from_the_url_is_not_run(office: Office) -> None:
    """An old `?q=` link lists the directory; the typed name is not searched."""
    ada = await add(office, "Ada Lovelace", "ada@example.com")
    grace = await add(office, "Grace Hopper", "grace@example.com")
    page = await office.browser.get("/patients", params={"q": "Lovelace"})
    assert page.status_code == 200
    assert "Ada Lovelace" in page.text and "Grace Hopper" in page.text
    assert [e["detail"] for e in await office.audit_events(action=SEARCH)] == [
        f"directory: 2 results; patients: {ada} {grace}"
    ]
    # The results page's address, reloaded or bookmarked, leads back to the directory.
    again = await office.browser.get("/patients/search")
    assert again.status_code == 303 and again.headers["location"] == "/patients"


async def test_search_form_without_its_token_is_refused_unaudited(office: Office) -> None:
    await add(office, "Ada Lovelace", "ada@example.com")
    forged = await httpx.AsyncClient.post(
        office.browser, "/patients/search", data={"q": "Lovelace"}
    )
    assert forged.status_code == 403
    assert "did not come from this site" in forged.text
    assert await office.audit_events(action=SEARCH) == []


async def test_search_page_when_signed_out_goes_to_log_in(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post("/patients/search", data={"q": "Lovelace"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


async def test_api_search_audited_without_the_query(office: Office) -> None:
    ada = await add(office, "Ada Lovelace", "ada@example.com")
    found = await office.api.get("/api/v1/patients", params={"q": "lovelace"})
    assert len(found.json()["items"]) == 1
    everyone = await office.api.get("/api/v1/patients")
    assert len(everyone.json()["items"]) == 1
    searches = await office.audit_events(action=SEARCH)
    assert [e["detail"] for e in searches] == [
        f"search: 1 result; patients: {ada}",
        f"directory: 1 result; patients: {ada}",
    ]
    assert "lovelace" not in (await all_events_text(office)).lower()


# Add ----------------------------------------------------------------------------------


async def test_patient_added_by_page_and_api_is_audited(office: Office) -> None:
    by_api = await add(office, "Ada Lovelace", "ada@example.com")
    by_page = await office.browser.post(
        "/patients", data={"name": "Grace Hopper", "email": "grace@example.com"}
    )
    assert by_page.status_code == 303
    listing = (await office.api.get("/api/v1/patients", params={"q": "grace"})).json()["items"]
    by_page_id = listing[0]["id"]

    added = await office.audit_events(action=ADD)
    assert [e["patient_id"] for e in added] == [by_api, by_page_id]
    assert all(e["detail"] is None for e in added)
    text = await all_events_text(office)
    assert "Hopper" not in text and "grace@example.com" not in text


async def test_refused_addition_is_not_audited(office: Office) -> None:
    await add(office, "Ada Lovelace", "ada@example.com")
    again = await office.api.post(
        "/api/v1/patients", json={"name": "Ada L", "email": "ADA@example.com"}
    )
    assert again.status_code == 409
    page = await office.browser.post("/patients", data={"name": " ", "email": "x@example.com"})
    assert page.status_code == 422
    assert len(await office.audit_events(action=ADD)) == 1


# Edit ---------------------------------------------------------------------------------


async def test_edit_patient_changes_fields_and_audits_their_names(office: Office) -> None:
    patient_id = await add(office, "Ada Lovelace", "ada@example.com")
    changed = await office.api.patch(
        f"/api/v1/patients/{patient_id}",
        json={"name": "Ada King", "email": "Ada.King@Example.com", "status": "NonPatient"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["email"], body["status"]) == (
        "Ada King",
        "Ada.King@example.com",  # as when adding: the domain is lower-cased
        "NonPatient",
    )
    # Stored: the new address is searchable the way every address is.
    found = await office.api.get("/api/v1/patients", params={"q": "ada.king@example.COM"})
    assert [p["id"] for p in found.json()["items"]] == [patient_id]

    only_status = await office.api.patch(
        f"/api/v1/patients/{patient_id}", json={"status": "Patient"}
    )
    assert only_status.status_code == 200
    assert only_status.json()["name"] == "Ada King"  # what was left out stays

    edits = await office.audit_events(action=EDIT)
    assert [(e["patient_id"], e["detail"]) for e in edits] == [
        (patient_id, "changed: name, email, status"),
        (patient_id, "changed: status"),
    ]
    text = await all_events_text(office)
    assert "King" not in text and "example.com" not in text.lower()


async def test_edit_that_changes_nothing_is_not_audited(office: Office) -> None:
    patient_id = await add(office, "Ada Lovelace", "ada@example.com")
    same = await office.api.patch(
        f"/api/v1/patients/{patient_id}", json={"name": "Ada Lovelace", "status": "Patient"}
    )
    assert same.status_code == 200
    assert (await office.api.patch(f"/api/v1/patients/{patient_id}", json={})).status_code == 200
    assert await office.audit_events(action=EDIT) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"status": "Former"}, "status"),
        ({"name": None}, "name"),
        ({"email": None}, "email"),
        ({"cc": "someone@example.com"}, "cc"),
    ],
)
async def test_edit_patient_refuses_bad_input_naming_the_field(
    office: Office, change: dict[str, Any], field: str
) -> None:
    patient_id = await add(office, "Ada Lovelace", "ada@example.com")
    refused = await office.api.patch(f"/api/v1/patients/{patient_id}", json=change)
    assert refused.status_code == 422
    assert field in [str(item["loc"][-1]) for item in refused.json()["detail"]]
    stored = (await office.api.get(f"/api/v1/patients/{patient_id}")).json()
    assert (stored["name"], stored["email"], stored["status"]) == (
        "Ada Lovelace",
        "ada@example.com",
        "Patient",
    )
    assert await office.audit_events(action=EDIT) == []


async def test_edit_patient_refuses_an_address_already_in_the_directory(office: Office) -> None:
    await add(office, "Ada Lovelace", "ada@example.com")
    grace = await add(office, "Grace Hopper", "grace@example.com")
    refused = await office.api.patch(
        f"/api/v1/patients/{grace}", json={"name": "Grace H", "email": " ADA@example.com"}
    )
    assert refused.status_code == 409
    assert [item["loc"][-1] for item in refused.json()["detail"]] == ["email"]
    stored = (await office.api.get(f"/api/v1/patients/{grace}")).json()
    assert (stored["name"], stored["email"]) == ("Grace Hopper", "grace@example.com")
    assert await office.audit_events(action=EDIT) == []


async def test_edit_patient_of_another_practice_is_not_found(
    office: Office, other_office: Office, settings: Settings
) -> None:
    theirs = await add(other_office, "Grace Hopper", "grace@example.com")
    refused = await office.api.patch(f"/api/v1/patients/{theirs}", json={"name": "Mallory"})
    assert refused.status_code == 404
    assert refused.json()["detail"] == "Patient not found"
    unknown = await office.api.patch("/api/v1/patients/no-such-id", json={"name": "X"})
    assert unknown.status_code == 404
    stored = (await other_office.api.get(f"/api/v1/patients/{theirs}")).json()
    assert stored["name"] == "Grace Hopper"
    assert await office.audit_events(action=EDIT) == []
    assert await other_office.audit_events(action=EDIT) == []


async def test_edit_patient_requires_a_token(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.patch("/api/v1/patients/any", json={"name": "X"})
    assert response.status_code == 401
