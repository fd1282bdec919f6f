"""The patient directory over ``/api/v1/patients`` (R2) and its refusals."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import Office


def field_of(response: httpx.Response) -> list[str]:
    return [str(item["loc"][-1]) for item in response.json()["detail"]]


async def test_create_patient_then_find_by_name_and_email(office: Office) -> None:
    created = await office.api.post(
        "/api/v1/patients", json={"name": "Ada Lovelace", "email": "Ada@Example.com"}
    )
    assert created.status_code == 201
    patient = created.json()
    assert patient["status"] == "Patient"
    assert patient["id"]

    by_name = await office.api.get("/api/v1/patients", params={"q": "lovel"})
    by_email = await office.api.get("/api/v1/patients", params={"q": "ADA@example"})
    assert [p["id"] for p in by_name.json()["items"]] == [patient["id"]]
    assert [p["id"] for p in by_email.json()["items"]] == [patient["id"]]
    nobody = await office.api.get("/api/v1/patients", params={"q": "Babbage"})
    assert nobody.json() == {"items": []}


async def test_create_patient_non_patient_status(office: Office) -> None:
    response = await office.api.post(
        "/api/v1/patients",
        json={"name": "Dr Referral", "email": "ortho@referral.example", "status": "NonPatient"},
    )
    assert response.status_code == 201
    assert response.json()["status"] == "NonPatient"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ada", "email": "not-an-address"}, "email"),
        ({"name": "   ", "email": "ada@example.com"}, "name"),
        ({"email": "ada@example.com"}, "name"),
        ({"name": "Ada", "email": "ada@example.com", "status": "Former"}, "status"),
        ({"name": "Ada", "email": "ada@example.com", "cc": "x@example.com"}, "cc"),
    ],
)
async def test_create_patient_refuses_bad_input(
    office: Office, body: dict[str, str], field: str
) -> None:
    response = await office.api.post("/api/v1/patients", json=body)
    assert response.status_code == 422
    assert field in field_of(response)
    listing = await office.api.get("/api/v1/patients")
    assert listing.json() == {"items": []}


async def test_create_patient_refuses_duplicate_email(office: Office) -> None:
    first = await office.api.post(
        "/api/v1/patients", json={"name": "Ada", "email": "ada@example.com"}
    )
    assert first.status_code == 201
    again = await office.api.post(
        "/api/v1/patients", json={"name": "Ada L", "email": " ADA@example.com "}
    )
    assert again.status_code == 409
    assert field_of(again) == ["email"]
    assert "already" in again.json()["detail"][0]["msg"]
    assert len((await office.api.get("/api/v1/patients")).json()["items"]) == 1


async def test_read_patients_requires_token(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/api/v1/patients")).status_code == 401
    wrong = await anonymous.get("/api/v1/patients", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


async def test_read_patient_of_other_practice_is_not_found(
    office: Office, app: object, settings: object
) -> None:
    from tests.conftest import make_office

    other = await make_office(app, settings)  # type: ignore[arg-type]
    created = await other.api.post(
        "/api/v1/patients", json={"name": "Grace", "email": "grace@example.com"}
    )
    patient_id = created.json()["id"]
    assert (await office.api.get(f"/api/v1/patients/{patient_id}")).status_code == 404
    assert (await office.api.get("/api/v1/patients", params={"q": "grace"})).json() == {"items": []}
    await other.aclose()


async def test_edit_patient_own_address_in_other_case_is_not_a_duplicate(office: Office) -> None:
    created = await office.api.post(
        "/api/v1/patients", json={"name": "Ada", "email": "ada@example.com"}
    )
    patient_id = created.json()["id"]
    changed = await office.api.patch(
        f"/api/v1/patients/{patient_id}", json={"email": "ADA@example.com"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == "ADA@example.com"


def test_edit_patient_declares_its_refusals_in_openapi(tmp_path: Path) -> None:
    from tests.fixtures.stack import own_settings
    from web.app import create_app

    document = create_app(own_settings(tmp_path)).openapi()
    responses = document["paths"]["/api/v1/patients/{patient_id}"]["patch"]["responses"]
    assert {"200", "401", "404", "409", "422"} <= set(responses)
