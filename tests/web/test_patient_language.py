"""The patient's language (R20): kept with the patient, set over the API and on the
office's patient pages, and refused in words when it is not one the product writes."""

from __future__ import annotations

import pytest

from tests.conftest import Office


async def language_of(office: Office, patient_id: str) -> str:
    return str((await office.api.get(f"/api/v1/patients/{patient_id}")).json()["language"])


# The API ------------------------------------------------------------------------------


async def test_create_patient_reads_english_unless_told(office: Office) -> None:
    patient = await office.add_patient()
    assert patient["language"] == "en"
    spanish = await office.add_patient(name="Luis Pérez", email="luis@example.com", language="es")
    assert spanish["language"] == "es"
    listed = (await office.api.get("/api/v1/patients")).json()["items"]
    assert {p["email"]: p["language"] for p in listed} == {
        "ana@example.com": "en",
        "luis@example.com": "es",
    }


async def test_change_patient_language(office: Office) -> None:
    patient = await office.add_patient()
    changed = await office.api.patch(f"/api/v1/patients/{patient['id']}", json={"language": "es"})
    assert changed.status_code == 200
    assert changed.json()["language"] == "es"
    assert await language_of(office, patient["id"]) == "es"
    # Other fields changed alone leave the language as it is.
    renamed = await office.api.patch(f"/api/v1/patients/{patient['id']}", json={"name": "Ana G"})
    assert renamed.json()["language"] == "es"


@pytest.mark.parametrize("language", ["fr", "spa", "ES", "", 1])
async def test_create_patient_refuses_unknown_language(office: Office, language: object) -> None:
    body = {"name": "Ana", "email": "ana@example.com", "language": language}
    response = await office.api.post("/api/v1/patients", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "language"]
    assert "'en' or 'es'" in error["msg"]
    assert (await office.api.get("/api/v1/patients")).json() == {"items": []}


@pytest.mark.parametrize("language", ["fr", None])
async def test_change_patient_refuses_unknown_or_null_language(
    office: Office, language: str | None
) -> None:
    patient = await office.add_patient(language="es")
    response = await office.api.patch(
        f"/api/v1/patients/{patient['id']}", json={"language": language}
    )
    assert response.status_code == 422
    assert [e["loc"][-1] for e in response.json()["detail"]] == ["language"]
    assert await language_of(office, patient["id"]) == "es"


# The office's pages -------------------------------------------------------------------


async def test_add_patient_form_chooses_the_language(office: Office) -> None:
    page = await office.browser.get("/patients")
    assert '<label for="language">Language</label>' in page.text
    assert '<option value="en" lang="en" selected>English</option>' in page.text
    assert '<option value="es" lang="es" >Español</option>' in page.text
    added = await office.browser.post(
        "/patients",
        data={"name": "Ana", "email": "ana@example.com", "status": "Patient", "language": "es"},
    )
    assert added.status_code == 303
    [patient] = (await office.api.get("/api/v1/patients")).json()["items"]
    assert patient["language"] == "es"


async def test_add_patient_form_without_the_field_adds_english(office: Office) -> None:
    added = await office.browser.post("/patients", data={"name": "Ana", "email": "ana@example.com"})
    assert added.status_code == 303
    [patient] = (await office.api.get("/api/v1/patients")).json()["items"]
    assert patient["language"] == "en"


async def test_add_patient_form_refuses_unknown_language(office: Office) -> None:
    refused = await office.browser.post(
        "/patients",
        data={"name": "Ana", "email": "ana@example.com", "status": "Patient", "language": "fr"},
    )
    assert refused.status_code == 422
    assert "Language: choose one of the listed options" in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert 'value="Ana"' in refused.text  # what was typed comes back
    assert (await office.api.get("/api/v1/patients")).json() == {"items": []}


async def test_edit_page_changes_the_language(office: Office) -> None:
    patient = await office.add_patient()
    path = f"/patients/{patient['id']}/edit"
    page = await office.browser.get(path)
    assert '<option value="en" lang="en" selected>English</option>' in page.text
    form = {"name": "Ana García", "email": "ana@example.com", "status": "Patient"}
    saved = await office.browser.post(path, data={**form, "language": "es"})
    assert saved.status_code == 303
    assert await language_of(office, patient["id"]) == "es"
    again = await office.browser.get(path)
    assert '<option value="es" lang="es" selected>Español</option>' in again.text
    edits = await office.audit_events(action="office.patient_edit")
    assert [e["detail"] for e in edits] == ["changed: language"]

    # A form without the field keeps it; an unknown one is refused and nothing changes.
    kept = await office.browser.post(path, data={**form, "name": "Ana G"})
    assert kept.status_code == 303
    assert await language_of(office, patient["id"]) == "es"
    refused = await office.browser.post(path, data={**form, "language": "de"})
    assert refused.status_code == 422
    assert "Language: choose one of the listed options" in refused.text
    assert await language_of(office, patient["id"]) == "es"
