"""Families on the office's pages: adding or editing a patient at an address another
patient has asks first ("Join the family?"), and the patient page lists the family."""

from __future__ import annotations

import html

import httpx

from tests.conftest import Office

HOME = "smithfam@example.com"
QUESTION = (
    "Emma Smith's address smithfam@example.com is already used by John Smith. "
    "Join John Smith's family? Whoever reads this mailbox can read every secure email "
    "sent to it."
)


async def added(office: Office, name: str, email: str = HOME, **more: object) -> str:
    response = await office.api.post(
        "/api/v1/patients", json={"name": name, "email": email, **more}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def read(office: Office, patient_id: str) -> dict[str, object]:
    return dict((await office.api.get(f"/api/v1/patients/{patient_id}")).json())


async def ids(office: Office) -> dict[str, str]:
    items = (await office.api.get("/api/v1/patients")).json()["items"]
    return {item["name"]: item["id"] for item in items}


def text(page: httpx.Response) -> str:
    return html.unescape(page.text)


def form(name: str = "Emma Smith", email: str = HOME, **more: str) -> dict[str, str]:
    return {"name": name, "email": email, "status": "Patient", "language": "en", **more}


async def test_add_patient_at_an_address_in_use_asks_then_joins_the_family(
    office: Office,
) -> None:
    john = await added(office, "John Smith")
    asked = await office.browser.post("/patients", data=form())
    assert asked.status_code == 409
    assert QUESTION in text(asked)
    assert ">Join the family</button>" in asked.text
    assert '<a href="#patient-email">Use another address</a>' in asked.text
    assert 'name="join_family" value="1"' in asked.text
    assert set(await ids(office)) == {"John Smith"}

    joined = await office.browser.post("/patients", data=form(join_family="1"))
    assert joined.status_code == 303
    emma = (await ids(office))["Emma Smith"]
    assert (await read(office, emma))["guarantor_id"] == john


async def test_add_patient_joining_names_the_head_of_the_family(office: Office) -> None:
    walter = await added(office, "Walter Smith", "walter@example.com")
    await added(office, "John Smith", guarantor_id=walter)
    asked = await office.browser.post("/patients", data=form())
    assert "already used by John Smith. Join Walter Smith's family?" in text(asked)
    await office.browser.post("/patients", data=form(join_family="1"))
    emma = (await ids(office))["Emma Smith"]
    assert (await read(office, emma))["guarantor_id"] == walter


async def test_add_patient_using_another_address_needs_no_question(office: Office) -> None:
    await added(office, "John Smith")
    other = await office.browser.post("/patients", data=form(email="emma@example.com"))
    assert other.status_code == 303
    assert (await read(office, (await ids(office))["Emma Smith"]))["guarantor_id"] is None


async def test_edit_patient_to_an_address_in_use_asks_then_joins(office: Office) -> None:
    john = await added(office, "John Smith")
    emma = await added(office, "Emma Smith", "emma@example.com")
    asked = await office.browser.post(f"/patients/{emma}/edit", data=form())
    assert asked.status_code == 409
    assert QUESTION in text(asked)
    assert (await read(office, emma))["email"] == "emma@example.com"

    joined = await office.browser.post(f"/patients/{emma}/edit", data=form(join_family="1"))
    assert joined.status_code == 303
    stored = await read(office, emma)
    assert stored["email"] == HOME and stored["guarantor_id"] == john


async def test_patient_page_lists_the_family_with_the_shared_address_warning(
    office: Office,
) -> None:
    john = await added(office, "John Smith")
    emma = await added(office, "Emma Smith", guarantor_id=john)
    liam = await added(office, "Liam Smith", "liam@example.com", guarantor_id=john)
    await added(office, "Ada Lovelace", "ada@example.com")

    page = await office.browser.get(f"/patients/{emma}/edit")
    assert page.status_code == 200
    shown = text(page)
    assert f'Guarantor: <a href="/patients/{john}/edit">John Smith</a> (same address)' in shown
    assert f'<a href="/patients/{liam}/edit">Liam Smith</a>' in shown
    assert "Ada Lovelace" not in shown
    assert (
        f"{HOME} is also used by John Smith. Whoever reads this mailbox can read every "
        "secure email sent to it." in shown
    )
    family_reads = await office.audit_events(action="office.patient_search")
    assert any(john in str(e["detail"]) and liam in str(e["detail"]) for e in family_reads)

    head = text(await office.browser.get(f"/patients/{john}/edit"))
    assert f'<a href="/patients/{emma}/edit">Emma Smith</a> (guarantor: John Smith)' in head
    assert f"{HOME} is also used by Emma Smith." in head

    alone = text(await office.browser.get(f"/patients/{liam}/edit"))
    assert "is also used by" not in alone  # Liam reads his own mailbox
    assert f'<a href="/patients/{emma}/edit">Emma Smith</a>' in alone
