"""A practice's clinics over ``/api/v1/clinics`` (R19): the practice's rules for each
field, audited like the settings, and another practice's clinic is not found."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_staff import add_member

DOWNTOWN: dict[str, Any] = {
    "name": "Downtown Clinic",
    "secure_email_enabled": True,
    "sender_address": "downtown@smile-dental.example",
    "phone": "(555) 010-4455",
    "address": "1 Main St, Springfield",
    "time_zone": "America/Chicago",
}


async def add_clinic(office: Office, **fields: Any) -> dict[str, Any]:
    response = await office.api.post("/api/v1/clinics", json={**DOWNTOWN, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_add_read_and_list_clinics(office: Office) -> None:
    assert (await office.api.get("/api/v1/clinics")).json() == {"items": []}
    added = await add_clinic(office, phone=" (555)  010-4455 ")
    assert added | {"id": None, "created_at": None} == {
        **DOWNTOWN,
        "id": None,
        "created_at": None,
    }
    uptown = await add_clinic(
        office, name="Uptown", secure_email_enabled=False, sender_address=None, time_zone=None
    )
    # Its zone is the practice's unless given.
    assert uptown["time_zone"] == "America/New_York"
    assert (await office.api.get(f"/api/v1/clinics/{added['id']}")).json() == added
    listed = (await office.api.get("/api/v1/clinics")).json()["items"]
    assert [clinic["name"] for clinic in listed] == ["Downtown Clinic", "Uptown"]
    events = await office.audit_events(action="office.settings_change")
    assert {event["detail"] for event in events} == {
        f"clinic {added['id']} added: Downtown Clinic",
        f"clinic {uptown['id']} added: Uptown",
    }


async def test_change_clinic_audits_each_field(office: Office) -> None:
    clinic = await add_clinic(office)
    response = await office.api.patch(
        f"/api/v1/clinics/{clinic['id']}", json={"phone": None, "time_zone": "America/Denver"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == clinic | {"phone": None, "time_zone": "America/Denver"}
    details = {e["detail"] for e in await office.audit_events(action="office.settings_change")}
    assert f"clinic {clinic['id']}: phone: (555) 010-4455 → none" in details
    assert f"clinic {clinic['id']}: time_zone: America/Chicago → America/Denver" in details
    # Nothing changed, nothing recorded.
    again = await office.api.patch(
        f"/api/v1/clinics/{clinic['id']}", json={"name": "Downtown Clinic"}
    )
    assert again.status_code == 200
    assert len(await office.audit_events(action="office.settings_change")) == 3


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"sender_address": "front desk"}, "sender_address"),
    ({"phone": "call us"}, "phone"),
    ({"phone": "12345"}, "phone"),
    ({"address": "1 Main St\nSpringfield"}, "address"),
    ({"address": "x" * 301}, "address"),
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ({"time_zone": ""}, "time_zone"),
    ({"secure_email_enabled": True, "sender_address": None}, "sender_address"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("body", "field"), REFUSED)
async def test_add_clinic_refuses_bad_input(
    office: Office, body: dict[str, Any], field: str
) -> None:
    response = await office.api.post("/api/v1/clinics", json={**DOWNTOWN, **body})
    assert response.status_code == 422
    assert field in [str(item["loc"][-1]) for item in response.json()["detail"]]
    assert (await office.api.get("/api/v1/clinics")).json() == {"items": []}
    assert await office.audit_events(action="office.settings_change") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        *REFUSED,
        ({"name": None}, "name"),
        ({"time_zone": None}, "time_zone"),
        ({"secure_email_enabled": None}, "secure_email_enabled"),
        # On, with its sender emptied.
        ({"sender_address": None}, "sender_address"),
        # Another clinic of the practice is called that already.
        ({"name": "Uptown"}, "name"),
    ],
)
async def test_change_clinic_refuses_bad_input(
    office: Office, body: dict[str, Any], field: str
) -> None:
    await add_clinic(office, name="Uptown")
    clinic = await add_clinic(office)
    before = (await office.api.get("/api/v1/clinics")).json()
    events = await office.audit_events(action="office.settings_change")
    response = await office.api.patch(f"/api/v1/clinics/{clinic['id']}", json=body)
    assert response.status_code == 422
    assert field in [str(item["loc"][-1]) for item in response.json()["detail"]]
    assert (await office.api.get("/api/v1/clinics")).json() == before
    assert await office.audit_events(action="office.settings_change") == events


async def test_add_clinic_refuses_a_name_taken(office: Office) -> None:
    await add_clinic(office)
    response = await office.api.post("/api/v1/clinics", json=DOWNTOWN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "name"
    assert "Another clinic" in response.json()["detail"][0]["msg"]


async def test_another_practices_clinic_is_not_found(office: Office, other_office: Office) -> None:
    theirs = await add_clinic(other_office)
    for method, body in (("GET", None), ("PATCH", {"name": "Mine now"})):
        response = await office.api.request(method, f"/api/v1/clinics/{theirs['id']}", json=body)
        assert response.status_code == 404
        assert response.json() == {"detail": "There is no such clinic in this practice"}
    unknown = await office.api.get("/api/v1/clinics/no-such-clinic")
    assert unknown.status_code == 404
    assert (await office.api.get("/api/v1/clinics")).json() == {"items": []}
    assert (await other_office.api.get(f"/api/v1/clinics/{theirs['id']}")).json() == theirs
    # The same name in another practice is that practice's own business.
    await add_clinic(office)


async def test_clerks_read_clinics_but_only_admins_change_them(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clinic = await add_clinic(office)
    clerk = await add_member(app, settings, office.practice_id)
    assert (await clerk.api.get("/api/v1/clinics")).json() == {"items": [clinic]}
    assert (await clerk.api.get(f"/api/v1/clinics/{clinic['id']}")).json() == clinic
    added = await clerk.api.post("/api/v1/clinics", json={**DOWNTOWN, "name": "Mine"})
    changed = await clerk.api.patch(f"/api/v1/clinics/{clinic['id']}", json={"name": "Mine"})
    for response in (added, changed):
        assert response.status_code == 403
        assert response.json() == {"detail": "Office administrators only"}
    assert (await office.api.get("/api/v1/clinics")).json() == {"items": [clinic]}
