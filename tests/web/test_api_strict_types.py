"""``/api/v1`` takes exactly the types its OpenAPI document declares: no number for a date
or a time (it was read as a Unix time), no boolean for a number (false was stored as 0),
no number for a string or a boolean; dates and times are ISO 8601 text. The office's
forms, which send text for every field, are not affected (their own tests)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Office


def refused_on(response: Any) -> str:
    """The field a 422 refusal names."""
    assert response.status_code == 422, response.text
    return str(response.json()["detail"][0]["loc"][-1])


def taken(response: Any, status: int = 200) -> Any:
    """The body of an answer that took the request (``status``); a refusal fails the test
    with its explanation."""
    assert response.status_code == status, response.text
    return response.json()


@pytest.mark.parametrize(
    ("url", "query", "field"),
    [
        ("/api/v1/audit", {"until": "0"}, "until"),
        ("/api/v1/audit", {"since": "1733443200"}, "since"),
        ("/api/v1/secure-emails", {"until": "0.5"}, "until"),
        ("/api/v1/secure-emails", {"since": "1e9"}, "since"),
    ],
)
async def test_a_number_is_not_a_date(
    office: Office, url: str, query: dict[str, str], field: str
) -> None:
    assert refused_on(await office.api.get(url, params=query)) == field


async def test_iso_dates_and_times_are_taken(office: Office) -> None:
    taken(await office.api.get("/api/v1/audit", params={"since": "2026-12-01"}))
    until = {"until": "2026-12-01T09:30:00-05:00"}
    taken(await office.api.get("/api/v1/secure-emails", params=until))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reminder_after_hours": False}, "reminder_after_hours"),
        ({"expiry_days": "7"}, "expiry_days"),
        ({"expiry_days": 7.5}, "expiry_days"),
        ({"secure_email_enabled": 1}, "secure_email_enabled"),
        ({"secure_email_enabled": "true"}, "secure_email_enabled"),
        ({"name": 5}, "name"),
    ],
)
async def test_practice_settings_take_their_declared_types(
    office: Office, body: dict[str, Any], field: str
) -> None:
    before = (await office.api.get("/api/v1/practice")).json()
    assert refused_on(await office.api.patch("/api/v1/practice", json=body)) == field
    assert (await office.api.get("/api/v1/practice")).json() == before


async def test_practice_settings_of_the_right_types_are_taken(office: Office) -> None:
    body = {"reminder_after_hours": 24, "expiry_days": 10}
    changed = taken(await office.api.patch("/api/v1/practice", json=body))
    assert changed["reminder_after_hours"] == 24


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (
            "/api/v1/clinics",
            {"name": "Downtown", "secure_email_enabled": "yes"},
            "secure_email_enabled",
        ),
        ("/api/v1/clinics", {"name": 7}, "name"),
        ("/api/v1/staff", {"name": 12, "email": "x@smile.example"}, "name"),
        ("/api/v1/staff", {"name": "X", "email": "x@smile.example", "clinic_ids": [1]}, "0"),
        ("/api/v1/tokens", {"label": "pms", "expires_at": 1893456000}, "expires_at"),
        ("/api/v1/tokens", {"label": True}, "label"),
        ("/api/v1/patients", {"name": 5, "email": "ana@example.com"}, "name"),
        (
            "/api/v1/patients",
            {"name": "Ana", "email": "ana@example.com", "share_address": "yes"},
            "share_address",
        ),
    ],
)
async def test_bodies_take_their_declared_types(
    office: Office, url: str, body: dict[str, Any], field: str
) -> None:
    before = (await office.api.get(url)).json()
    assert refused_on(await office.api.post(url, json=body)) == field
    assert (await office.api.get(url)).json() == before


async def test_enums_and_times_as_text_are_taken(office: Office) -> None:
    clerk = {"name": "Desk", "email": "desk-strict@smile.example", "role": "clerk"}
    taken(await office.api.post("/api/v1/staff", json=clerk), 201)
    token = {"label": "pms", "expires_at": "2030-01-01T00:00:00Z"}
    taken(await office.api.post("/api/v1/tokens", json=token), 201)


async def test_a_new_expiry_is_a_time_not_a_number(office: Office) -> None:
    changed = await office.api.patch(
        "/api/v1/secure-emails/some-id", json={"expires_at": 1893456000}
    )
    assert refused_on(changed) == "expires_at"


async def test_patients_take_their_status_as_text(office: Office) -> None:
    ana = {"name": "Ana", "email": "ana@example.com", "status": "NonPatient"}
    added = taken(await office.api.post("/api/v1/patients", json=ana), 201)
    change = {"status": "Patient", "language": "es"}
    taken(await office.api.patch(f"/api/v1/patients/{added['id']}", json=change))


async def test_open_dental_settings_take_their_declared_types(office: Office) -> None:
    body = {"developer_key": "dev", "customer_key": "cust", "sync_minutes": "15"}
    refused = await office.api.put("/api/v1/integrations/open-dental", json=body)
    assert refused_on(refused) == "sync_minutes"


async def test_a_whole_number_written_with_a_point_is_one(office: Office) -> None:
    """JSON Schema's ``integer`` counts ``10.0`` as one, so a client may send it."""
    changed = taken(await office.api.patch("/api/v1/practice", json={"expiry_days": 10.0}))
    assert changed["expiry_days"] == 10
    assert refused_on(await office.api.patch("/api/v1/practice", json={"expiry_days": True}))
