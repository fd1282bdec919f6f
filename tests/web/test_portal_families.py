"""Two patients at one address: a message's link, passcode and Verify give a session for
that address, which shows the secure emails of every patient of the practice at that
address, each marked with whose it is ("For Emma"). A reply belongs to the patient of
the message it answers: filed to that patient's chart, the alert naming that patient."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.passcodes import another_code
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_chart import filed
from tests.web.test_portal import sign_in

HOME = "smithfam@example.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


async def family(stack: Stack) -> tuple[str, str]:
    """John and Emma Smith at one address, John the family's head."""
    john = await stack.add_patient("John Smith", HOME)
    added = await stack.office.api.post(
        "/api/v1/patients", json={"name": "Emma Smith", "email": HOME, "guarantor_id": john}
    )
    assert added.status_code == 201, added.text
    return john, str(added.json()["id"])


async def alert_of(stack: Stack, secure_email_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        items: list[dict[str, Any]] = (await stack.office.api.get("/api/v1/alerts")).json()["items"]
        return next((i for i in items if i["secure_email_id"] == secure_email_id), None)

    return await eventually(check)


def line_of(page: httpx.Response, secure_email_id: str) -> str:
    return page.text.split(f'href="/portal/messages/{secure_email_id}">')[1].split("</li>")[0]


async def reply(mailbox: httpx.AsyncClient, secure_email_id: str, filename: str) -> None:
    replied = await mailbox.post(
        f"/portal/messages/{secure_email_id}/reply",
        data={"subject": "RE", "body": "Monday suits us."},
        files=[("attachments", (filename, PNG, "image/png"))],
    )
    assert replied.status_code == 303, replied.text


async def test_shared_address_session_shows_the_family_each_reply_its_patients(
    stack: Stack,
) -> None:
    john, emma = await family(stack)
    emmas = await stack.send_secure(emma, "Braces", "Brackets on Monday.")
    emma_link = await stack.notice_link(HOME)
    johns = await stack.send_secure(john, "Crown", "The crown is ready.")
    await stack.mail_to(HOME, 2)

    async with stack.browser() as mailbox:
        # Emma's link and passcode: her message first, and the family's Inbox.
        assert await sign_in(stack, mailbox, emma_link, HOME) == f"/portal/messages/{emmas}"
        inbox = await mailbox.get("/portal")
        assert "For Emma" in line_of(inbox, emmas) and "Braces" in line_of(inbox, emmas)
        assert "For John" in line_of(inbox, johns) and "Crown" in line_of(inbox, johns)
        johns_page = await mailbox.get(f"/portal/messages/{johns}")
        assert johns_page.status_code == 200 and "For John" in johns_page.text
        await reply(mailbox, emmas, "emma.png")
        await reply(mailbox, johns, "john.png")
        files = await mailbox.get("/portal/files")
        assert "For Emma" in files.text and "For John" in files.text
        sent = await mailbox.get("/portal/sent")
        assert "For Emma" in sent.text and "For John" in sent.text

    [emma_file] = await filed(stack, emma, 1)
    [john_file] = await filed(stack, john, 1)
    assert emma_file["filename"] == "emma.png" and emma_file["secure_email_id"] == emmas
    assert john_file["filename"] == "john.png" and john_file["secure_email_id"] == johns
    emma_alert, john_alert = await alert_of(stack, emmas), await alert_of(stack, johns)
    assert emma_alert["patient_id"] == emma and emma_alert["patient_name"] == "Emma Smith"
    assert john_alert["patient_id"] == john and john_alert["patient_name"] == "John Smith"


async def test_a_patient_alone_at_an_address_sees_no_for_whom_marks(stack: Stack) -> None:
    ada = await stack.add_patient("Ada Lovelace", "ada@example.com")
    ours = await stack.send_secure(ada, "Plan", "Words.")
    link = await stack.notice_link("ada@example.com")
    async with stack.browser() as mailbox:
        await sign_in(stack, mailbox, link, "ada@example.com")
        inbox = await mailbox.get("/portal")
        assert "Plan" in line_of(inbox, ours) and "For Ada" not in inbox.text


async def test_one_childs_wrong_codes_do_not_lock_the_parent_out(stack: Stack) -> None:
    """Lock-outs are per message: Emma's passcode burned by five wrong tries leaves
    John's message, at the same address, its own passcode and Verify."""
    john, emma = await family(stack)
    await stack.send_secure(emma, "Braces", "Brackets on Monday.")
    emma_link = await stack.notice_link(HOME)
    johns = await stack.send_secure(john, "Crown", "The crown is ready.")
    await stack.mail_to(HOME, 2)
    john_link = await stack.notice_link(HOME)
    async with stack.browser() as child:
        await child.post(f"{emma_link}/passcode")
        passcode = await stack.passcode(HOME, 3)
        wrong = another_code(passcode)
        for _ in range(5):
            last = await child.post(f"{emma_link}/verify", data={"passcode": wrong})
        assert "no longer works" in last.text
    async with stack.browser() as parent:
        assert await sign_in(stack, parent, john_link, HOME) == f"/portal/messages/{johns}"
