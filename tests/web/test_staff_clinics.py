"""The clinics a member of staff works for: given by an admin over ``/api/v1/staff`` and
on the Staff page, checked against the practice's clinics, audited by ids; none means
every clinic, as for every member of staff before clinics."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_api_clinics import add_clinic
from tests.web.test_staff import add_member

UNKNOWN = "There is no such clinic in this practice"


def desk(who: str = "desk") -> str:
    """An address no account has yet (accounts' addresses are unique on the platform)."""
    return f"{who}-{uuid.uuid4().hex[:8]}@smile.example"


def front_desk(**fields: Any) -> dict[str, Any]:
    """A new member's JSON body or Staff page form: Front Desk, at an address no account
    has yet, with ``fields`` (``role``, ``clinic_ids``) as given."""
    return {"name": "Front Desk", "email": desk(), **fields}


def refused_field(response: Any) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    first = response.json()["detail"][0]
    return str(first["loc"][-1]), str(first["msg"])


async def test_add_staff_for_some_clinics_and_change_them(office: Office) -> None:
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    uptown = (await add_clinic(office, name="Uptown"))["id"]
    added = await office.api.post(
        "/api/v1/staff", json=front_desk(clinic_ids=[uptown, downtown, uptown])
    )
    assert added.status_code == 201, added.text
    member = added.json()
    assert member["clinic_ids"] == sorted([downtown, uptown])
    url = f"/api/v1/staff/{member['id']}"
    narrowed = await office.api.patch(url, json={"clinic_ids": [downtown]})
    assert narrowed.status_code == 200 and narrowed.json()["clinic_ids"] == [downtown]
    both = await office.api.patch(url, json={"clinic_ids": [], "role": "admin"})
    assert both.json()["clinic_ids"] == [] and both.json()["role"] == "admin"
    listed = (await office.api.get("/api/v1/staff")).json()["items"]
    assert next(m for m in listed if m["id"] == member["id"])["clinic_ids"] == []
    [add] = await office.audit_events(action="staff.add")
    first, second = sorted([downtown, uptown])
    assert add["detail"].endswith(f"for clinic {first}, clinic {second}")
    changes = [e["detail"] for e in await office.audit_events(action="staff.clinics_change")]
    assert changes == [
        f"staff {member['id']}: clinic {first}, clinic {second} → clinic {downtown}",
        f"staff {member['id']}: clinic {downtown} → every clinic",
    ]
    # The same clinics again change (and record) nothing.
    await office.api.patch(url, json={"clinic_ids": []})
    assert len(await office.audit_events(action="staff.clinics_change")) == 2


async def test_staff_without_clinics_work_for_every_clinic(office: Office) -> None:
    added = await office.api.post("/api/v1/staff", json=front_desk())
    assert added.json()["clinic_ids"] == []
    [add] = await office.audit_events(action="staff.add")
    assert add["detail"] == f"staff {added.json()['id']} as clerk"


@pytest.mark.parametrize("whose", ["unknown", "other practice's"])
async def test_staff_clinics_must_be_the_practices(
    office: Office, other_office: Office, whose: str
) -> None:
    clinic_id = "no-such-clinic"
    if whose != "unknown":
        clinic_id = (await add_clinic(other_office, name="Theirs"))["id"]
    added = await office.api.post("/api/v1/staff", json=front_desk(clinic_ids=[clinic_id]))
    assert refused_field(added) == ("clinic_ids", UNKNOWN)
    assert [m["email"] for m in (await office.api.get("/api/v1/staff")).json()["items"]] == [
        office.email
    ]
    member = await office.api.post("/api/v1/staff", json=front_desk())
    changed = await office.api.patch(
        f"/api/v1/staff/{member.json()['id']}", json={"clinic_ids": [clinic_id]}
    )
    assert refused_field(changed) == ("clinic_ids", UNKNOWN)
    assert await office.audit_events(action="staff.clinics_change") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"clinic_ids": None}, "clinic_ids"),
        ({"role": None}, "role"),
        ({"clinic_ids": "downtown"}, "clinic_ids"),
        ({"clinic_ids": [""]}, "0"),
        ({"clinics": []}, "clinics"),
    ],
)
async def test_staff_change_refuses_bad_fields(
    office: Office, body: dict[str, Any], field: str
) -> None:
    member = await office.api.post("/api/v1/staff", json=front_desk())
    changed = await office.api.patch(f"/api/v1/staff/{member.json()['id']}", json=body)
    assert refused_field(changed)[0] == field


async def test_staff_page_shows_and_changes_clinics(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    plain = await office.browser.get("/staff")
    assert "Clinics" not in plain.text and 'name="clinic_ids"' not in plain.text
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    await add_clinic(office, name="Uptown")
    clerk = await add_member(app, settings, office.practice_id, name="Front Desk")
    page = await office.browser.get("/staff")
    assert '<th scope="col">Clinics</th>' in page.text
    assert page.text.count("All clinics") >= 2
    changed = await office.browser.post(
        f"/staff/{clerk.id}/clinics", data={"clinic_ids": [downtown]}, follow_redirects=True
    )
    assert changed.status_code == 200
    assert "Clinics changed" in changed.text
    row = re.search(r"<tr>\s*<td data-label=\"Name\">Front Desk.*?</tr>", changed.text, re.S)
    assert row is not None and "Downtown" in row.group(0) and "All clinics" not in row.group(0)
    assert f'value="{downtown}" id="clinic-{clerk.id}-{downtown}" checked' in row.group(0)
    refused = await office.browser.post(
        f"/staff/{clerk.id}/clinics", data={"clinic_ids": ["no-such-clinic"]}
    )
    assert refused.status_code == 422 and UNKNOWN in refused.text
    cleared = await office.browser.post(f"/staff/{clerk.id}/clinics", follow_redirects=True)
    row = re.search(r"<tr>\s*<td data-label=\"Name\">Front Desk.*?</tr>", cleared.text, re.S)
    assert row is not None and "All clinics" in row.group(0)


async def test_staff_page_adds_a_member_for_a_clinic(office: Office) -> None:
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    added = await office.browser.post(
        "/staff", data=front_desk(role="clerk", clinic_ids=[downtown])
    )
    assert added.status_code == 200 and "Temporary password for Front Desk" in added.text
    member = next(
        m
        for m in (await office.api.get("/api/v1/staff")).json()["items"]
        if m["name"] == "Front Desk"
    )
    assert member["clinic_ids"] == [downtown]
    refused = await office.browser.post(
        "/staff",
        data={"name": "Back Desk", "email": desk("back"), "clinic_ids": ["nope"]},
    )
    assert refused.status_code == 422 and UNKNOWN in refused.text
    assert 'id="clinic-ids-error"' in refused.text
    assert len((await office.api.get("/api/v1/staff")).json()["items"]) == 2
