"""Families over ``/api/v1/patients``: a shared address only with consent, and a
guarantor that is another patient of the practice whose chain of guarantors ends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.conftest import Office

HOME = "smithfam@example.com"


async def add(office: Office, name: str, email: str = HOME, **more: Any) -> httpx.Response:
    return await office.api.post("/api/v1/patients", json={"name": name, "email": email, **more})


async def added(office: Office, name: str, email: str = HOME, **more: Any) -> str:
    response = await add(office, name, email, **more)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def count(office: Office) -> int:
    return len((await office.api.get("/api/v1/patients")).json()["items"])


def refusal(response: httpx.Response) -> dict[str, Any]:
    [item] = response.json()["detail"]
    return dict(item)


# Adding at an address in use ---------------------------------------------------------


async def test_create_patient_at_an_address_in_use_is_refused_without_consent(
    office: Office,
) -> None:
    john = await added(office, "John Smith")
    response = await add(office, "Emma Smith", " SmithFam@Example.com ")
    assert response.status_code == 409
    item = refusal(response)
    assert item["loc"] == ["body", "email"]
    assert "already has this address" in item["msg"]
    assert "guarantor_id" in item["msg"] and "share_address" in item["msg"]
    assert item["ctx"] == {"patients": [john], "family_head": john}
    assert HOME not in response.text  # ids only, no address repeated
    assert await count(office) == 1


async def test_two_patients_added_at_once_at_one_new_address_ask_the_second(
    office: Office,
) -> None:
    """Two clerks adding different patients at the same new address at the same moment:
    one is added, the other is asked about the family, as if they had come one by one."""
    for _ in range(3):
        home = f"new-{uuid.uuid4().hex[:8]}@example.com"
        answers = await asyncio.gather(
            add(office, "John Smith", home), add(office, "Emma Smith", home)
        )
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    assert await count(office) == 3


async def test_create_patient_at_an_address_in_use_with_share_address(office: Office) -> None:
    await added(office, "John Smith")
    response = await add(office, "Emma Smith", share_address=True)
    assert response.status_code == 201, response.text
    assert response.json()["guarantor_id"] is None
    assert await count(office) == 2


async def test_create_patient_joining_the_family_of_a_patient_at_the_address(
    office: Office,
) -> None:
    john = await added(office, "John Smith")
    emma = await added(office, "Emma Smith", guarantor_id=john)
    read = (await office.api.get(f"/api/v1/patients/{emma}")).json()
    assert read["guarantor_id"] == john
    # A third names the family's head, though only Emma and John are at the address.
    assert (await add(office, "Liam Smith", guarantor_id=john)).status_code == 201


async def test_create_patient_naming_the_head_of_a_family_elsewhere(office: Office) -> None:
    grandpa = await added(office, "Walter Smith", "walter@example.com")
    await added(office, "John Smith", guarantor_id=grandpa)
    # John's guarantor heads the family at HOME, though Walter reads another mailbox.
    assert (await add(office, "Emma Smith", guarantor_id=grandpa)).status_code == 201


async def test_create_patient_with_a_guarantor_of_another_family_is_refused(
    office: Office,
) -> None:
    await added(office, "John Smith")
    stranger = await added(office, "Ada Lovelace", "ada@example.com")
    response = await add(office, "Emma Smith", guarantor_id=stranger)
    assert response.status_code == 409
    assert refusal(response)["loc"] == ["body", "email"]
    assert await count(office) == 2


async def test_create_patient_with_an_unknown_guarantor_is_refused(office: Office) -> None:
    response = await add(office, "Emma Smith", guarantor_id="no-such-patient")
    assert response.status_code == 422
    item = refusal(response)
    assert item["loc"] == ["body", "guarantor_id"]
    assert item["msg"] == "The guarantor must be another patient of this practice"
    assert await count(office) == 0


async def test_create_patient_with_another_practices_guarantor_is_refused(
    office: Office, other_office: Office
) -> None:
    theirs = await added(other_office, "John Smith")
    response = await add(office, "Emma Smith", guarantor_id=theirs, share_address=True)
    assert response.status_code == 422
    assert refusal(response)["msg"] == "The guarantor must be another patient of this practice"
    assert await count(office) == 0


async def test_another_practices_patient_at_the_address_needs_no_consent(
    office: Office, other_office: Office
) -> None:
    await added(other_office, "John Smith")
    assert (await add(office, "Emma Smith")).status_code == 201


# Changing ----------------------------------------------------------------------------


async def test_edit_patient_guarantor_itself_is_refused(office: Office) -> None:
    john = await added(office, "John Smith")
    response = await office.api.patch(f"/api/v1/patients/{john}", json={"guarantor_id": john})
    assert response.status_code == 422
    assert refusal(response)["msg"] == "A patient cannot be their own guarantor"
    assert (await office.api.get(f"/api/v1/patients/{john}")).json()["guarantor_id"] is None


async def test_edit_patient_guarantor_making_a_cycle_is_refused(office: Office) -> None:
    john = await added(office, "John Smith")
    emma = await added(office, "Emma Smith", guarantor_id=john)
    liam = await added(office, "Liam Smith", guarantor_id=emma)
    for patient, guarantor in ((john, emma), (john, liam)):
        response = await office.api.patch(
            f"/api/v1/patients/{patient}", json={"guarantor_id": guarantor}
        )
        assert response.status_code == 409
        item = refusal(response)
        assert item["loc"] == ["body", "guarantor_id"]
        assert "leads back to this patient" in item["msg"]
    assert (await office.api.get(f"/api/v1/patients/{john}")).json()["guarantor_id"] is None


async def test_edit_patient_guarantor_of_another_practice_is_refused(
    office: Office, other_office: Office
) -> None:
    theirs = await added(other_office, "John Smith")
    emma = await added(office, "Emma Smith")
    response = await office.api.patch(f"/api/v1/patients/{emma}", json={"guarantor_id": theirs})
    assert response.status_code == 422
    assert refusal(response)["msg"] == "The guarantor must be another patient of this practice"


async def test_edit_patient_leaves_and_joins_a_family(office: Office) -> None:
    john = await added(office, "John Smith")
    emma = await added(office, "Emma Smith", guarantor_id=john)
    left = await office.api.patch(f"/api/v1/patients/{emma}", json={"guarantor_id": None})
    assert left.status_code == 200, left.text
    assert left.json()["guarantor_id"] is None
    back = await office.api.patch(f"/api/v1/patients/{emma}", json={"guarantor_id": john})
    assert back.json()["guarantor_id"] == john
    events = await office.audit_events(action="office.patient_edit")
    assert any(e["detail"] == "changed: guarantor_id" for e in events)


async def test_edit_patient_to_an_address_in_use(office: Office) -> None:
    john = await added(office, "John Smith")
    emma = await added(office, "Emma Smith", "emma@example.com")
    url = f"/api/v1/patients/{emma}"
    refused = await office.api.patch(url, json={"email": HOME})
    assert refused.status_code == 409
    assert refusal(refused)["ctx"] == {"patients": [john], "family_head": john}
    assert (await office.api.get(url)).json()["email"] == "emma@example.com"

    joined = await office.api.patch(url, json={"email": HOME, "guarantor_id": john})
    assert joined.status_code == 200, joined.text
    assert joined.json()["email"] == HOME and joined.json()["guarantor_id"] == john


async def test_edit_patient_to_an_address_in_use_with_share_address(office: Office) -> None:
    await added(office, "John Smith")
    emma = await added(office, "Emma Smith", "emma@example.com")
    shared = await office.api.patch(
        f"/api/v1/patients/{emma}", json={"email": HOME, "share_address": True}
    )
    assert shared.status_code == 200, shared.text
    assert shared.json()["email"] == HOME


async def test_edit_patient_head_moving_to_a_dependants_address(office: Office) -> None:
    john = await added(office, "John Smith", "john@example.com")
    await added(office, "Emma Smith", guarantor_id=john, share_address=True)
    # Emma's family is John's: John may read the same mailbox without further consent.
    moved = await office.api.patch(f"/api/v1/patients/{john}", json={"email": HOME})
    assert moved.status_code == 200, moved.text
