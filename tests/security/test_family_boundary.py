"""The attacker's view of shared addresses: a portal session proves the one address its
passcode went to, and shows nothing sent to another address, even the same patient's
after an address change, nor another practice's patient at the same address.

These hold for today's portal (a session per patient and address) and are the
boundary any family view (every patient of the practice at the session's address) must
keep."""

from __future__ import annotations

import httpx

from tests.conftest import make_office
from tests.fixtures.stack import Stack
from tests.web.test_portal import sign_in

HOME = "smithfam@example.com"
AWAY = "emma.smith@example.com"
PDF = ("plan.pdf", b"%PDF-1.4\n", "application/pdf")


async def attachment_of(stack: Stack, secure_email_id: str, api: httpx.AsyncClient) -> str:
    status = (await api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    return str(status["attachments"][0]["id"])


async def nothing_of(mailbox: httpx.AsyncClient, secure_email_id: str, attachment: str) -> None:
    """Neither listed, nor opened, nor downloaded, nor answered."""
    for tab in ("/portal", "/portal/files", "/portal/sent"):
        page = await mailbox.get(tab)
        assert page.status_code == 200
        assert secure_email_id not in page.text and attachment not in page.text
    message = f"/portal/messages/{secure_email_id}"
    assert (await mailbox.get(message)).status_code == 404
    assert (await mailbox.get(f"{message}/attachments/{attachment}")).status_code == 404
    assert (await mailbox.get(f"{message}/reply")).status_code == 404
    replied = await mailbox.post(f"{message}/reply", data={"subject": "RE", "body": "mine now"})
    assert replied.status_code == 404


async def test_session_for_an_address_never_shows_a_message_sent_to_another(
    stack: Stack,
) -> None:
    john = await stack.add_patient("John Smith", HOME)
    emma = await stack.office.api.post(
        "/api/v1/patients",
        json={"name": "Emma Smith", "email": HOME, "guarantor_id": john},
    )
    emma_id = emma.json()["id"]
    at_home = await stack.send_secure(emma_id, "Emma at home", "Sent home.", [PDF])
    home_link = await stack.notice_link(HOME)

    # Emma moves out; what is sent now goes to her own mailbox.
    moved = await stack.office.api.patch(f"/api/v1/patients/{emma_id}", json={"email": AWAY})
    assert moved.status_code == 200, moved.text
    away = await stack.send_secure(emma_id, "Emma away", "Sent away.", [PDF])
    away_link = await stack.notice_link(AWAY)
    home_file = await attachment_of(stack, at_home, stack.office.api)
    away_file = await attachment_of(stack, away, stack.office.api)

    async with stack.browser() as family_mailbox:
        await sign_in(stack, family_mailbox, home_link, HOME)
        assert at_home in (await family_mailbox.get("/portal")).text
        await nothing_of(family_mailbox, away, away_file)

    async with stack.browser() as own_mailbox:
        await sign_in(stack, own_mailbox, away_link, AWAY)
        assert away in (await own_mailbox.get("/portal")).text
        await nothing_of(own_mailbox, at_home, home_file)


async def test_another_practices_patient_at_the_address_never_shows(stack: Stack) -> None:
    other = await make_office(stack.app, stack.settings)
    try:
        added = await other.api.post("/api/v1/patients", json={"name": "Emma Smith", "email": HOME})
        assert added.status_code == 201, added.text
        sent = await other.api.post(
            "/api/v1/secure-emails",
            data={"patient_id": added.json()["id"], "subject": "Elsewhere", "body": "Other"},
            files=[("attachments", PDF)],
        )
        assert sent.status_code == 201, sent.text
        theirs = str(sent.json()["id"])
        await stack.mail_to(HOME, 1)
        their_file = await attachment_of(stack, theirs, other.api)
    finally:
        await other.aclose()

    john = await stack.add_patient("John Smith", HOME)
    ours = await stack.send_secure(john, "Ours", "Our words.", [PDF])
    await stack.mail_to(HOME, 2)
    link = await stack.notice_link(HOME)
    async with stack.browser() as mailbox:
        assert await sign_in(stack, mailbox, link, HOME) == f"/portal/messages/{ours}"
        await nothing_of(mailbox, theirs, their_file)


async def test_family_session_never_shows_a_member_who_moved_or_reads_elsewhere(
    stack: Stack,
) -> None:
    """The family is who is at the session's address now, and only what was sent there:
    Emma's message sent home before she moved, and Liam's sent to his own address (he is
    of John's family), never show in John's session at home."""
    john = await stack.add_patient("John Smith", HOME)
    emma = (
        await stack.office.api.post(
            "/api/v1/patients", json={"name": "Emma Smith", "email": HOME, "guarantor_id": john}
        )
    ).json()["id"]
    liam = (
        await stack.office.api.post(
            "/api/v1/patients",
            json={"name": "Liam Smith", "email": "liam@example.com", "guarantor_id": john},
        )
    ).json()["id"]
    emmas = await stack.send_secure(emma, "Emma at home", "Sent home.", [PDF])
    await stack.mail_to(HOME, 1)
    moved = await stack.office.api.patch(f"/api/v1/patients/{emma}", json={"email": AWAY})
    assert moved.status_code == 200, moved.text
    liams = await stack.send_secure(liam, "Liam's own", "Sent to Liam.", [PDF])
    johns = await stack.send_secure(john, "John's", "Sent to John.", [PDF])
    await stack.mail_to(HOME, 2)
    link = await stack.notice_link(HOME)
    async with stack.browser() as mailbox:
        assert await sign_in(stack, mailbox, link, HOME) == f"/portal/messages/{johns}"
        assert johns in (await mailbox.get("/portal")).text
        await nothing_of(mailbox, emmas, await attachment_of(stack, emmas, stack.office.api))
        await nothing_of(mailbox, liams, await attachment_of(stack, liams, stack.office.api))
