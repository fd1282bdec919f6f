"""Two patients at one address: each message's link, passcode and Verify give a session
that shows that patient's messages alone; a reply is filed to that patient's chart and
its alert names that patient."""

from __future__ import annotations

from typing import Any

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


async def test_shared_address_session_shows_the_patient_of_its_message(stack: Stack) -> None:
    john, emma = await family(stack)
    emmas = await stack.send_secure(emma, "Emma's braces", "Brackets on Monday.")
    emma_link = await stack.notice_link(HOME)
    johns = await stack.send_secure(john, "John's crown", "The crown is ready.")
    await stack.mail_to(HOME, 2)
    john_link = await stack.notice_link(HOME)
    assert john_link != emma_link

    async with stack.browser() as mailbox:
        message_path = await sign_in(stack, mailbox, emma_link, HOME)
        assert message_path == f"/portal/messages/{emmas}"
        inbox = await mailbox.get("/portal")
        assert "Emma&#39;s braces" in inbox.text or "Emma's braces" in inbox.text
        assert "crown" not in inbox.text
        assert (await mailbox.get(f"/portal/messages/{johns}")).status_code == 404
        replied = await mailbox.post(
            f"{message_path}/reply",
            data={"subject": "RE: Emma's braces", "body": "Monday suits us."},
            files=[("attachments", ("consent.png", PNG, "image/png"))],
        )
        assert replied.status_code == 303

    [document] = await filed(stack, emma, 1)
    assert document["filename"] == "consent.png" and document["secure_email_id"] == emmas
    assert (await stack.office.api.get(f"/api/v1/patients/{john}/chart")).json()["items"] == []
    alert = await alert_of(stack, emmas)
    assert alert["patient_id"] == emma and alert["patient_name"] == "Emma Smith"

    # John's link, its own passcode and Verify: John's message, not Emma's.
    async with stack.browser() as mailbox:
        assert await sign_in(stack, mailbox, john_link, HOME) == f"/portal/messages/{johns}"
        inbox = await mailbox.get("/portal")
        assert "crown" in inbox.text and "braces" not in inbox.text
        assert (await mailbox.get(f"/portal/messages/{emmas}")).status_code == 404
