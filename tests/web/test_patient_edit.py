"""Editing a patient: the office page, and what a changed address means for
secure emails already sent: they stay with the address their notice went to, so that
mailbox's holder can still open them and the new address's session cannot."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from infra.db.engine import make_engine
from infra.db.models import SecureEmail
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.stack import Stack
from tests.web.test_portal import sign_in

EDIT = "office.patient_edit"
OLD = "ada@example.com"
NEW = "ada.king@example.com"
SUBJECT = "Treatment plan"
BODY = "Two fillings, upper left."


async def add(office: Office, name: str = "Ada Lovelace", email: str = OLD) -> str:
    created = await office.api.post("/api/v1/patients", json={"name": name, "email": email})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def form(name: str = "Ada Lovelace", email: str = OLD, status: str = "Patient") -> dict[str, str]:
    return {"name": name, "email": email, "status": status}


async def stored(office: Office, patient_id: str) -> tuple[str, str, str]:
    body = (await office.api.get(f"/api/v1/patients/{patient_id}")).json()
    return body["name"], body["email"], body["status"]


# The page -----------------------------------------------------------------------------


async def test_edit_page_has_labelled_fields_and_saves(office: Office) -> None:
    patient_id = await add(office)
    directory = await office.browser.get("/patients")
    assert f'href="/patients/{patient_id}/edit"' in directory.text

    page = await office.browser.get(f"/patients/{patient_id}/edit")
    assert page.status_code == 200
    for label in ('<label for="name">Name</label>', '<label for="patient-email">Email</label>'):
        assert label in page.text
    assert '<label for="status">Status</label>' in page.text
    assert 'value="Ada Lovelace"' in page.text and f'value="{OLD}"' in page.text

    saved = await office.browser.post(
        f"/patients/{patient_id}/edit", data=form(name="Ada King", status="NonPatient")
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/patients/{patient_id}/edit?saved=1"
    assert "Ada" not in saved.headers["location"]  # nothing typed lands in a URL
    after = await office.browser.get(saved.headers["location"])
    assert "Changes saved." in after.text
    assert "stay with" not in after.text  # nothing was sent, so nothing stays behind
    assert await stored(office, patient_id) == ("Ada King", OLD, "NonPatient")

    edits = await office.audit_events(action=EDIT)
    assert [(e["patient_id"], e["detail"]) for e in edits] == [
        (patient_id, "changed: name, status")
    ]
    assert "King" not in (await office.api.get("/api/v1/audit")).text


@pytest.mark.parametrize(
    ("typed", "field", "words"),
    [
        (form(email="not-an-address"), "email", "enter a valid email address"),
        (form(name="  "), "name", "Name is required"),
        (form(status="Former"), "status", "Status"),
    ],
)
async def test_edit_page_refuses_bad_values_keeping_what_was_typed(
    office: Office, typed: dict[str, str], field: str, words: str
) -> None:
    patient_id = await add(office)
    refused = await office.browser.post(f"/patients/{patient_id}/edit", data=typed)
    assert refused.status_code == 422
    assert "The patient was not changed" in refused.text
    assert f'id="{field}-error"' in refused.text and words in refused.text
    if field == "email":
        assert 'value="not-an-address"' in refused.text
    assert await stored(office, patient_id) == ("Ada Lovelace", OLD, "Patient")
    assert await office.audit_events(action=EDIT) == []


async def test_edit_page_asks_before_sharing_an_address_in_the_directory(office: Office) -> None:
    await add(office)
    grace = await add(office, "Grace Hopper", "grace@example.com")
    refused = await office.browser.post(
        f"/patients/{grace}/edit", data=form(name="Grace H", email=" ADA@example.com")
    )
    assert refused.status_code == 409
    assert "is already used by Ada Lovelace. Join Ada Lovelace's family?" in refused.text
    assert await stored(office, grace) == ("Grace Hopper", "grace@example.com", "Patient")
    assert await office.audit_events(action=EDIT) == []


async def test_edit_page_of_another_practice_is_not_found(
    office: Office, other_office: Office, settings: Settings
) -> None:
    theirs = await add(other_office, "Grace Hopper", "grace@example.com")
    assert (await office.browser.get(f"/patients/{theirs}/edit")).status_code == 404
    posted = await office.browser.post(f"/patients/{theirs}/edit", data=form(name="Mallory"))
    assert posted.status_code == 404
    assert (await stored(other_office, theirs))[0] == "Grace Hopper"


async def test_edit_page_without_its_token_is_refused(office: Office) -> None:
    patient_id = await add(office)
    forged = await httpx.AsyncClient.post(
        office.browser, f"/patients/{patient_id}/edit", data=form(name="Mallory")
    )
    assert forged.status_code == 403
    assert (await stored(office, patient_id))[0] == "Ada Lovelace"


async def test_edit_page_when_signed_out_goes_to_log_in(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/patients/any/edit")
    assert response.status_code == 303 and response.headers["location"] == "/login"


# Messages already sent ----------------------------------------------------------------


async def send(stack: Stack, patient_id: str, address: str, count: int) -> tuple[str, str]:
    secure_email_id = await stack.send_secure(patient_id, SUBJECT, BODY)
    await stack.mail_to(address, count)
    return secure_email_id, await stack.notice_link(address)


async def recipient_of(stack: Stack, secure_email_id: str) -> str | None:
    engine = make_engine(stack.settings.database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                select(SecureEmail.recipient_address).where(SecureEmail.id == secure_email_id)
            )
    finally:
        await engine.dispose()
    return str(found) if found is not None else None


async def test_open_messages_stay_with_the_old_address(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", OLD)
    old_id, old_link = await send(stack, patient_id, OLD, 1)
    assert await recipient_of(stack, old_id) == OLD

    async with stack.browser() as old_holder:
        await sign_in(stack, old_holder, old_link, OLD)
        changed = await stack.office.browser.post(
            f"/patients/{patient_id}/edit", data=form(email=NEW)
        )
        assert changed.status_code == 303
        page = await stack.office.browser.get(changed.headers["location"])
        assert f"Open secure emails stay with {OLD}; new ones go to {NEW}." in page.text
        assert f'action="/secure-emails/{old_id}/send-again"' in page.text
        # The old mailbox's session still opens what was sent there.
        assert SUBJECT in (await old_holder.get("/portal")).text
        message = await old_holder.get(f"/portal/messages/{old_id}")
        assert message.status_code == 200 and BODY in message.text

        # Send again, from the edit page's button: a new message, to the new address.
        again = await stack.office.browser.post(f"/secure-emails/{old_id}/send-again")
        assert again.status_code == 303
        new_id = again.headers["location"].split("/")[2].split("?")[0]
        assert await recipient_of(stack, new_id) == NEW
        page = await stack.office.browser.get(f"/patients/{patient_id}/edit")
        assert f'action="/secure-emails/{old_id}/send-again"' not in page.text
        assert f'href="/secure-emails/{new_id}"' in page.text  # "sent again", not twice

        # The old session does not see what went to the new address.
        assert (await old_holder.get(f"/portal/messages/{new_id}")).status_code == 404

    new_link = await stack.notice_link(NEW)
    async with stack.browser() as new_holder:
        await sign_in(stack, new_holder, new_link, NEW)
        inbox = await new_holder.get("/portal")
        assert f"/portal/messages/{new_id}" in inbox.text
        assert f"/portal/messages/{old_id}" not in inbox.text
        refused = await new_holder.get(f"/portal/messages/{old_id}")
        assert refused.status_code == 404 and BODY not in refused.text
        assert (await new_holder.get(f"/portal/messages/{new_id}")).status_code == 200


async def test_old_link_after_the_change_mails_its_passcode_to_the_old_address(
    stack: Stack,
) -> None:
    """The worker mails a message's passcodes to the address its notice went to
    (``activities/mail.py``), and the session it opens is bound to that address."""
    patient_id = await stack.add_patient("Ada Lovelace", OLD)
    old_id, old_link = await send(stack, patient_id, OLD, 1)
    changed = await stack.office.api.patch(f"/api/v1/patients/{patient_id}", json={"email": NEW})
    assert changed.status_code == 200
    async with stack.browser() as old_holder:
        passcode_page = await old_holder.post(f"{old_link}/passcode", follow_redirects=True)
        assert "a•••@example.com" in passcode_page.text  # the old address, masked
        passcode = await stack.passcode(OLD, 2)
        verified = await old_holder.post(f"{old_link}/verify", data={"passcode": passcode})
        assert verified.status_code == 303
        message = await old_holder.get(f"/portal/messages/{old_id}")
        assert message.status_code == 200 and BODY in message.text
