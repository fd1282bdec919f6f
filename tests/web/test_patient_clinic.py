"""A patient's clinic (R19): set over the API and on the office's patient pages, one of
the practice's own clinics or none; another practice's clinic is refused (422)."""

from __future__ import annotations

import pytest

from tests.conftest import Office
from tests.web.test_api_clinics import add_clinic


async def clinic_of(office: Office, patient_id: object) -> object:
    return (await office.api.get(f"/api/v1/patients/{patient_id}")).json()["clinic_id"]


# The API ------------------------------------------------------------------------------


async def test_patient_without_a_clinic_unless_told(office: Office) -> None:
    assert (await office.add_patient())["clinic_id"] is None
    clinic = await add_clinic(office)
    patient = await office.add_patient(email="luis@example.com", clinic_id=clinic["id"])
    assert patient["clinic_id"] == clinic["id"]
    assert await clinic_of(office, patient["id"]) == clinic["id"]


async def test_change_patient_clinic_and_back_to_none(office: Office) -> None:
    clinic = await add_clinic(office)
    patient = await office.add_patient()
    url = f"/api/v1/patients/{patient['id']}"
    moved = await office.api.patch(url, json={"clinic_id": clinic["id"]})
    assert moved.status_code == 200
    assert moved.json()["clinic_id"] == clinic["id"]
    renamed = await office.api.patch(url, json={"name": "Ana G"})
    assert renamed.json()["clinic_id"] == clinic["id"]
    back = await office.api.patch(url, json={"clinic_id": None})
    assert back.json()["clinic_id"] is None
    edits = await office.audit_events(action="office.patient_edit")
    assert [e["detail"] for e in edits].count("changed: clinic_id") == 2


@pytest.mark.parametrize("whose", ["other", "unknown"])
async def test_patient_clinic_must_be_the_practices(
    office: Office, other_office: Office, whose: str
) -> None:
    theirs = await add_clinic(other_office)
    clinic_id = theirs["id"] if whose == "other" else "no-such-clinic"
    created = await office.api.post(
        "/api/v1/patients", json={"name": "Ana", "email": "ana@example.com", "clinic_id": clinic_id}
    )
    assert created.status_code == 422
    assert created.json()["detail"][0]["loc"] == ["body", "clinic_id"]
    assert created.json()["detail"][0]["msg"] == "There is no such clinic in this practice"
    assert (await office.api.get("/api/v1/patients")).json() == {"items": []}
    patient = await office.add_patient()
    changed = await office.api.patch(
        f"/api/v1/patients/{patient['id']}", json={"clinic_id": clinic_id}
    )
    assert changed.status_code == 422
    assert changed.json()["detail"][0]["loc"] == ["body", "clinic_id"]
    assert await clinic_of(office, patient["id"]) is None
    assert await office.audit_events(action="office.patient_edit") == []


# The office's pages -------------------------------------------------------------------


async def test_patient_form_has_no_clinic_field_without_clinics(office: Office) -> None:
    assert 'name="clinic_id"' not in (await office.browser.get("/patients")).text
    patient = await office.add_patient()
    edit = await office.browser.get(f"/patients/{patient['id']}/edit")
    assert 'name="clinic_id"' not in edit.text


async def test_patient_forms_choose_the_clinic(office: Office, other_office: Office) -> None:
    clinic = await add_clinic(office)
    page = await office.browser.get("/patients")
    assert '<label for="clinic_id">Clinic</label>' in page.text
    assert f'<option value="{clinic["id"]}" >Downtown Clinic</option>' in page.text
    form = {"name": "Ana", "email": "ana@example.com", "status": "Patient", "language": "en"}
    added = await office.browser.post("/patients", data={**form, "clinic_id": clinic["id"]})
    assert added.status_code == 303
    [patient] = (await office.api.get("/api/v1/patients")).json()["items"]
    assert patient["clinic_id"] == clinic["id"]

    path = f"/patients/{patient['id']}/edit"
    edit = await office.browser.get(path)
    assert f'<option value="{clinic["id"]}" selected>Downtown Clinic</option>' in edit.text
    # A form without the field keeps the clinic; "none" is the practice's own.
    kept = await office.browser.post(path, data={**form, "name": "Ana G"})
    assert kept.status_code == 303
    assert await clinic_of(office, patient["id"]) == clinic["id"]
    theirs = await add_clinic(other_office)
    refused = await office.browser.post(path, data={**form, "clinic_id": theirs["id"]})
    assert refused.status_code == 422
    assert "There is no such clinic in this practice" in refused.text
    assert await clinic_of(office, patient["id"]) == clinic["id"]
    none = await office.browser.post(path, data={**form, "clinic_id": "none"})
    assert none.status_code == 303
    assert await clinic_of(office, patient["id"]) is None
