"""``POST /api/v1/patients/import``: a CSV file's patients into the directory (SQLite and
PostgreSQL), re-imported by external_id, refused row by row, within the clerk's clinics."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from domain.clinics import UNKNOWN_CLINIC
from domain.patient_import import NOT_UTF8
from domain.staff import StaffRole
from infra.patient_import import ADDRESS_IN_USE, OUT_OF_REACH
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_api_clinics import add_clinic
from tests.web.test_staff import add_member

URL = "/api/v1/patients/import"
CSV = {"Content-Type": "text/csv"}
HEADER = "first_name,last_name,email,language,status,clinic,family_id,external_id\n"
FILE = (
    HEADER + "Ana,Diaz,diaz@example.com,es,,,D,1\n"
    "Bo,Diaz,diaz@example.com,spa,,,D,2\n"
    "Cy,Moss,cy@example.com,,NonPatient,,,3\n"
)


async def post(api: httpx.AsyncClient, text: str, **params: str) -> httpx.Response:
    return await api.post(URL, content=text.encode("utf-8"), headers=CSV, params=params)


async def imported(api: httpx.AsyncClient, text: str, **params: str) -> dict[str, Any]:
    response = await post(api, text, **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def directory(office: Office) -> dict[str, dict[str, Any]]:
    listing = await office.api.get("/api/v1/patients")
    return {p["name"]: p for p in listing.json()["items"]}


def counts(answer: dict[str, Any]) -> tuple[int, int, int]:
    return answer["created"], answer["updated"], answer["unchanged"]


def errors(answer: dict[str, Any]) -> list[tuple[int, str | None]]:
    return [(e["row"], e["column"]) for e in answer["errors"]]


async def test_import_patients_creates_then_reimport_is_unchanged(office: Office) -> None:
    assert await imported(office.api, FILE) == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "errors": [],
    }
    patients = await directory(office)
    assert set(patients) == {"Ana Diaz", "Bo Diaz", "Cy Moss"}
    ana, bo, cy = patients["Ana Diaz"], patients["Bo Diaz"], patients["Cy Moss"]
    assert (ana["language"], ana["guarantor_id"], ana["status"]) == ("es", None, "Patient")
    # The family's first row heads it; the others name it and share its address.
    assert (bo["guarantor_id"], bo["email"]) == (ana["id"], "diaz@example.com")
    assert (cy["status"], cy["language"]) == ("NonPatient", "en")

    again = await imported(office.api, FILE)
    assert counts(again) == (0, 0, 3)
    assert len(await directory(office)) == 3


async def test_import_patients_changed_row_is_updated_and_audited_by_field(
    office: Office,
) -> None:
    await imported(office.api, FILE)
    changed = FILE.replace("Cy,Moss,cy@example.com,,NonPatient", "Cy,Moss-Lee,cy@new.example,,")
    assert counts(await imported(office.api, changed)) == (0, 1, 2)
    cy = (await directory(office))["Cy Moss-Lee"]
    assert (cy["email"], cy["status"]) == ("cy@new.example", "Patient")
    edits = await office.audit_events(action="office.patient_edit")
    assert [(e["patient_id"], e["detail"]) for e in edits] == [
        (cy["id"], "changed: name, email, status")
    ]
    adds = await office.audit_events(action="office.patient_add")
    assert len(adds) == 3 and all(e["patient_id"] for e in adds)
    [first, second] = await office.audit_events(action="office.patient_import")
    assert first["detail"] == "csv: 3 created, 0 updated, 0 unchanged, 0 rows refused"
    assert second["detail"] == "csv: 0 created, 1 updated, 2 unchanged, 0 rows refused"
    every = " ".join(str(e["detail"]) for e in await office.audit_events())
    assert "Moss" not in every and "example" not in every


async def test_import_patients_without_external_id_always_creates(office: Office) -> None:
    text = "first_name,last_name,email\nAda,Lovelace,ada@example.com\n"
    assert counts(await imported(office.api, text)) == (1, 0, 0)
    # The same row again is another patient, whose address the first one has.
    again = await imported(office.api, text)
    assert counts(again) == (0, 0, 0)
    assert again["errors"] == [{"row": 2, "column": "email", "message": ADDRESS_IN_USE}]


async def test_import_patients_dry_run_writes_nothing(office: Office) -> None:
    answer = await imported(office.api, FILE, dry_run="true")
    assert counts(answer) == (3, 0, 0)
    assert await directory(office) == {}
    assert await office.audit_events(action="office.patient_add") == []
    assert await office.audit_events(action="office.patient_import") == []


async def test_import_patients_any_error_imports_nothing(office: Office) -> None:
    text = FILE + "Dee,,not-an-address,Klingon,,,,4\n"
    answer = await imported(office.api, text)
    assert counts(answer) == (0, 0, 0)
    assert errors(answer) == [(5, "email"), (5, "language"), (5, "last_name")]
    assert "not-an-address" not in str(answer) and "Klingon" not in str(answer)
    assert await directory(office) == {}
    # A dry run says what the same import answers.
    assert counts(await imported(office.api, text, dry_run="true")) == (0, 0, 0)


async def test_import_patients_skip_errors_imports_the_good_rows(office: Office) -> None:
    text = FILE.replace("Ana,Diaz,diaz@example.com,es", "Ana,Diaz,diaz@,es") + (
        "Eve,Ng,eve@example.com,,,,,5\n"
    )
    answer = await imported(office.api, text, skip_errors="true")
    # Bo's family's first row was refused: Bo cannot be imported without it.
    assert errors(answer) == [(2, "email"), (3, "family_id")]
    assert counts(answer) == (2, 0, 0)
    assert set(await directory(office)) == {"Cy Moss", "Eve Ng"}


async def test_import_patients_clinic_by_name_of_this_practice_only(
    office: Office, other_office: Office
) -> None:
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    await add_clinic(other_office, name="Harbour")
    text = HEADER + "Ana,Diaz,ana@example.com,,,downtown,,1\nBo,Ray,bo@example.com,,,Harbour,,2\n"
    answer = await imported(office.api, text, skip_errors="true")
    assert answer["errors"] == [{"row": 3, "column": "clinic", "message": UNKNOWN_CLINIC}]
    assert (await directory(office))["Ana Diaz"]["clinic_id"] == downtown
    # The other practice's directory is untouched, and its ids are its own.
    assert await directory(other_office) == {}
    theirs = text.replace("downtown", "").replace("Harbour", "")
    assert counts(await imported(other_office.api, theirs)) == (2, 0, 0)


async def test_restricted_clerk_imports_only_into_their_clinics(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    await add_clinic(office, name="Uptown")
    await imported(office.api, HEADER + "Up,Town,up@example.com,,,Uptown,,9\n")
    clerk = await add_member(app, settings, office.practice_id, role=StaffRole.CLERK)
    restricted = await office.api.patch(
        f"/api/v1/staff/{clerk.id}", json={"clinic_ids": [downtown]}
    )
    assert restricted.status_code == 200
    text = (
        HEADER + "Ana,Diaz,ana@example.com,,,Downtown,,1\n"
        "Bo,Ray,bo@example.com,,,Uptown,,2\n"
        "Up,Renamed,up@example.com,,,Downtown,,9\n"
    )
    answer = await imported(clerk.api, text)
    assert answer["errors"] == [
        {"row": 3, "column": "clinic", "message": UNKNOWN_CLINIC},
        {"row": 4, "column": "external_id", "message": OUT_OF_REACH},
    ]
    assert counts(answer) == (0, 0, 0)
    assert set(await directory(office)) == {"Up Town"}
    await clerk.api.aclose()
    await clerk.browser.aclose()


async def test_import_patients_address_of_another_patient_is_an_error(office: Office) -> None:
    added = await office.api.post(
        "/api/v1/patients", json={"name": "By Hand", "email": "hand@example.com"}
    )
    assert added.status_code == 201
    answer = await imported(office.api, HEADER + "Ana,Diaz,HAND@example.com,,,,,1\n")
    assert answer["errors"] == [{"row": 2, "column": "email", "message": ADDRESS_IN_USE}]
    assert "family_id" in ADDRESS_IN_USE


async def test_import_patients_family_reimported_moves_its_address_together(
    office: Office,
) -> None:
    await imported(office.api, FILE)
    moved = FILE.replace("diaz@example.com", "diaz@new.example")
    assert counts(await imported(office.api, moved)) == (0, 2, 1)
    patients = await directory(office)
    assert patients["Bo Diaz"]["email"] == "diaz@new.example"
    assert patients["Bo Diaz"]["guarantor_id"] == patients["Ana Diaz"]["id"]


async def test_import_patients_refuses_an_unreadable_file_in_words(office: Office) -> None:
    latin_1 = "first_name,last_name,email\nJosé,Núñez,jose@example.com\n".encode("latin-1")
    response = await office.api.post(URL, content=latin_1, headers=CSV)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == NOT_UTF8
    unknown = await post(office.api, "first_name,last_name,email,ssn\n")
    assert unknown.status_code == 422
    assert 'Unknown column "ssn"' in unknown.json()["detail"][0]["msg"]


async def test_import_patients_refuses_another_content_type_and_a_large_body(
    office: Office,
) -> None:
    as_json = await office.api.post(URL, json={"first_name": "Ada"})
    assert as_json.status_code == 415
    large = await office.api.post(URL, content=b"x" * (5 * 1024 * 1024 + 1), headers=CSV)
    assert large.status_code == 413
    assert "5 MB" in large.json()["detail"]


async def test_import_patients_requires_a_token(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post(URL, content=FILE.encode(), headers=CSV)
    assert response.status_code == 401


async def test_import_route_is_not_read_as_a_patient_id(office: Office) -> None:
    assert (await office.api.get("/api/v1/patients/import")).status_code == 404
    assert (await office.api.patch("/api/v1/patients/import", json={})).status_code == 404


async def test_an_import_retried_with_its_idempotency_key_imports_once(office: Office) -> None:
    """A retry after a timeout answers what the first import did; a file of rows without
    external ids would otherwise add every patient twice."""
    once = HEADER + "Dee,Lane,dee@example.com,,,,,\nEd,Lane,ed@example.com,,,,,\n"
    key = {**CSV, "Idempotency-Key": "import-2026-12-07-1"}
    first = await office.api.post(URL, content=once.encode(), headers=key)
    again = await office.api.post(URL, content=once.encode(), headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and counts(first.json()) == (2, 0, 0)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert sorted(await directory(office)) == ["Dee Lane", "Ed Lane"]
    other = await office.api.post(URL, content=FILE.encode(), headers=key)
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert sorted(await directory(office)) == ["Dee Lane", "Ed Lane"]
