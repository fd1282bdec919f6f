"""An administrator restricted to one clinic manages staff and reads the audit log only
within that reach: they cannot widen their own clinics, give anyone more than they have,
reset the password of (and so become) someone who reaches further, or read the names of
another clinic's patients on the Audit page.

Written as the attack was first tried: Downtown's admin, with their own API token and
browser, giving themselves every clinic, then making an unrestricted account, then
resetting the practice owner's password.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from domain.staff import StaffRole
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_api_clinics import add_clinic
from tests.web.test_staff import Member, add_member
from web.services.staff import BEYOND_REACH


@dataclass(frozen=True)
class Practice:
    downtown: str
    uptown: str
    admin: Member  # an administrator restricted to Downtown


@pytest.fixture
async def practice(app: FastAPI, settings: Settings, office: Office) -> Practice:
    downtown = (await add_clinic(office, name="Downtown"))["id"]
    uptown = (await add_clinic(office, name="Uptown"))["id"]
    admin = await add_member(app, settings, office.practice_id, role=StaffRole.ADMIN)
    restricted = await office.api.patch(
        f"/api/v1/staff/{admin.id}", json={"clinic_ids": [downtown]}
    )
    assert restricted.status_code == 200, restricted.text
    return Practice(downtown, uptown, admin)


def refused_clinics(response: object) -> None:
    assert getattr(response, "status_code", None) == 422, getattr(response, "text", "")
    [error] = response.json()["detail"]  # type: ignore[attr-defined]
    assert error["loc"][-1] == "clinic_ids" and error["msg"] == BEYOND_REACH


async def test_restricted_admin_cannot_widen_their_own_clinics(practice: Practice) -> None:
    api = practice.admin.api
    url = f"/api/v1/staff/{practice.admin.id}"
    refused_clinics(await api.patch(url, json={"clinic_ids": []}))
    refused_clinics(await api.patch(url, json={"clinic_ids": [practice.downtown, practice.uptown]}))
    # Through the Staff page as well: no box ticked means every clinic.
    page = await practice.admin.browser.post(f"/staff/{practice.admin.id}/clinics", data={})
    assert page.status_code == 422 and "your own clinics" in page.text
    listed = (await api.get("/api/v1/staff")).json()["items"]
    [me] = [member for member in listed if member["id"] == practice.admin.id]
    assert me["clinic_ids"] == [practice.downtown]


async def test_restricted_admin_gives_no_one_more_than_they_have(practice: Practice) -> None:
    api = practice.admin.api

    def new(email: str, clinic_ids: list[str]) -> dict[str, object]:
        return {"name": "New Hire", "email": email, "role": "admin", "clinic_ids": clinic_ids}

    refused_clinics(await api.post("/api/v1/staff", json=new("every@smile.example", [])))
    refused_clinics(
        await api.post("/api/v1/staff", json=new("uptown@smile.example", [practice.uptown]))
    )
    added = await api.post("/api/v1/staff", json=new("down@smile.example", [practice.downtown]))
    assert added.status_code == 201, added.text
    assert added.json()["clinic_ids"] == [practice.downtown]


async def test_restricted_admin_cannot_reach_staff_who_reach_further(
    practice: Practice, office: Office
) -> None:
    """The practice's own admin (every clinic) is, to Downtown's admin, as another
    practice's: not listed, and every change answers 404."""
    api, browser = practice.admin.api, practice.admin.browser
    owner = next(
        member["id"]
        for member in (await office.api.get("/api/v1/staff")).json()["items"]
        if member["id"] != practice.admin.id
    )
    assert owner not in {
        member["id"] for member in (await api.get("/api/v1/staff")).json()["items"]
    }
    for attempt in (
        await api.post(f"/api/v1/staff/{owner}/reset-password"),
        await api.post(f"/api/v1/staff/{owner}/deactivate"),
        await api.patch(f"/api/v1/staff/{owner}", json={"role": "clerk"}),
        await api.patch(f"/api/v1/staff/{owner}", json={"clinic_ids": [practice.downtown]}),
        await browser.post(f"/staff/{owner}/reset-password"),
    ):
        assert attempt.status_code == 404, attempt.text
    # Still the practice's admin, for every clinic, with the password they had.
    [still] = [
        m for m in (await office.api.get("/api/v1/staff")).json()["items"] if m["id"] == owner
    ]
    assert still["role"] == "admin" and still["clinic_ids"] == [] and still["active"]
    assert (await office.api.get("/api/v1/staff")).status_code == 200


async def test_restricted_admins_audit_page_names_only_their_clinics_patients(
    practice: Practice, office: Office
) -> None:
    ana = await office.add_patient(
        name="Ana Downtown", email="ana@example.com", clinic_id=practice.downtown
    )
    bo = await office.add_patient(
        name="Bo Uptown", email="bo@example.com", clinic_id=practice.uptown
    )
    page = await practice.admin.browser.get("/audit")
    assert page.status_code == 200
    # Both were added (audited events of each), but only Ana is named or offered.
    assert "Ana Downtown" in page.text
    assert "Bo Uptown" not in page.text
    assert bo["id"][:8] in page.text
    assert f'value="{ana["id"]}"' in page.text and f'value="{bo["id"]}"' not in page.text
    # The practice's own admin sees both.
    unrestricted = await office.browser.get("/audit")
    assert "Ana Downtown" in unrestricted.text and "Bo Uptown" in unrestricted.text
