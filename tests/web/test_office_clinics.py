"""The Clinics page of Settings (R19): admins list, add and change clinics under the
practice's rules, in words; another practice's clinic is not found."""

from __future__ import annotations

from typing import Any

from tests.conftest import Office
from tests.web.test_api_clinics import DOWNTOWN, add_clinic

FORM = {
    "name": "Downtown Clinic",
    "sender_address": "downtown@smile-dental.example",
    "phone": "(555) 010-4455",
    "address": "1 Main St",
    "time_zone": "America/Chicago",
    "secure_email_enabled": "on",
}


async def clinics_of(office: Office) -> list[dict[str, Any]]:
    return list((await office.api.get("/api/v1/clinics")).json()["items"])


async def test_settings_page_links_to_clinics(office: Office) -> None:
    clinics = await office.browser.follow_link("/settings", "/settings/clinics", "Clinics")
    assert "The practice has no clinics" in clinics.text
    # The new clinic's zone is the practice's until chosen.
    assert '<option value="America/New_York" selected>' in clinics.text


async def test_add_clinic_on_the_page(office: Office) -> None:
    added = await office.browser.post("/settings/clinics", data=FORM)
    assert added.status_code == 303
    assert added.headers["location"] == "/settings/clinics?saved=added"
    [clinic] = await clinics_of(office)
    assert clinic | {"id": None, "created_at": None} == {
        **DOWNTOWN,
        "address": "1 Main St",
        "id": None,
        "created_at": None,
    }
    page = await office.browser.get(added.headers["location"])
    assert "Clinic added." in page.text
    assert f'<a href="/settings/clinics/{clinic["id"]}">Downtown Clinic</a>' in page.text
    assert "Enabled" in page.text


async def test_add_clinic_page_refuses_in_words_and_keeps_typing(office: Office) -> None:
    cases = [
        ({"name": ""}, "Name is required"),
        ({"phone": "call us"}, "Phone: Enter a phone number"),
        ({"address": "a\tb"}, "Address: Enter the address on one line"),
        ({"time_zone": "Mars/Olympus_Mons"}, "Time zone: choose one of the listed"),
        ({"sender_address": "front desk"}, "Sender address: enter a valid email address"),
        ({"sender_address": ""}, "Enter a sender address before enabling Secure Email"),
    ]
    for change, words in cases:
        refused = await office.browser.post("/settings/clinics", data={**FORM, **change})
        assert refused.status_code == 422, change
        assert words in refused.text, change
        assert "Nothing was saved" in refused.text
        assert 'aria-invalid="true"' in refused.text
        if change.get("name") != "":
            assert 'value="Downtown Clinic"' in refused.text
    assert await clinics_of(office) == []
    assert await office.audit_events(action="office.settings_change") == []


async def test_edit_clinic_on_the_page(office: Office) -> None:
    clinic = await add_clinic(office)
    path = f"/settings/clinics/{clinic['id']}"
    page = await office.browser.get(path)
    assert page.status_code == 200
    assert 'value="downtown@smile-dental.example"' in page.text
    assert '<option value="America/Chicago" selected>' in page.text
    # Unticked, emptied phone: Secure Email off, the practice's phone shown.
    form = {**FORM, "phone": "", "secure_email_enabled": ""}
    del form["secure_email_enabled"]
    saved = await office.browser.post(path, data=form)
    assert saved.status_code == 303
    [changed] = await clinics_of(office)
    assert changed == clinic | {
        "phone": None,
        "secure_email_enabled": False,
        "address": "1 Main St",
    }
    refused = await office.browser.post(path, data={**FORM, "time_zone": "EST5"})
    assert refused.status_code == 422
    assert "Time zone: choose one of the listed time zones" in refused.text
    assert await clinics_of(office) == [changed]


async def test_another_practices_clinic_page_is_not_found(
    office: Office, other_office: Office
) -> None:
    theirs = await add_clinic(other_office)
    path = f"/settings/clinics/{theirs['id']}"
    assert (await office.browser.get(path)).status_code == 404
    assert (await office.browser.post(path, data={**FORM, "name": "Mine"})).status_code == 404
    assert await clinics_of(other_office) == [theirs]
