"""The attacker's view of the family's filter by person (``?for=<patient id>`` on Inbox,
Sent and Files): a value that names nobody of the session's family (another family's
patient, another practice's, one who moved out, garbage) shows the session's whole family,
status 200 and no error, whichever it is (nothing says whether the id exists), and never
anyone else's message, subject or file."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

from tests.conftest import make_office
from tests.fixtures.stack import Stack
from tests.web.test_portal import sign_in

HOME = "smithfam@example.com"
AWAY = "emma.smith@example.com"
PDF = ("plan.pdf", b"%PDF-1.4\n", "application/pdf")
TABS = ("/portal", "/portal/sent", "/portal/files")
WAY_BACK = re.compile(r'<input type="hidden" name="back" value="[^"]*">')
FOR_IN_LINK = re.compile(r'href="[^"]*[?&](?:amp;)?for=([^"&]*)')


async def joined(stack: Stack, name: str, email: str, head: str) -> str:
    added = await stack.office.api.post(
        "/api/v1/patients", json={"name": name, "email": email, "guarantor_id": head}
    )
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


async def attachment_of(api: httpx.AsyncClient, secure_email_id: str) -> str:
    status = (await api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    return str(status["attachments"][0]["id"])


async def tab_for(mailbox: httpx.AsyncClient, tab: str, wanted: str) -> str:
    """The tab filtered by ``wanted``, but for the language switch's way back to this
    very page (the URL as typed, which may hold an outsider's id it was given)."""
    page = await mailbox.get(f"{tab}?for={quote(wanted, safe='')}")
    assert page.status_code == 200, (tab, wanted, page.status_code)
    return WAY_BACK.sub("", page.text)


async def test_filter_by_an_outsider_shows_the_whole_family_and_never_the_outsider(
    stack: Stack,
) -> None:
    # Another practice's patient at the family's address, with a message and a file.
    other = await make_office(stack.app, stack.settings)
    try:
        added = await other.api.post("/api/v1/patients", json={"name": "Emma Smith", "email": HOME})
        assert added.status_code == 201, added.text
        stranger = str(added.json()["id"])
        sent = await other.api.post(
            "/api/v1/secure-emails",
            data={"patient_id": stranger, "subject": "Elsewhere", "body": "Other"},
            files=[("attachments", PDF)],
        )
        assert sent.status_code == 201, sent.text
        strangers = str(sent.json()["id"])
        await stack.mail_to(HOME, 1)
        strangers_file = await attachment_of(other.api, strangers)
    finally:
        await other.aclose()

    # John and Emma at home; Liam of John's family reads at his own address.
    john = await stack.add_patient("John Smith", HOME)
    emma = await joined(stack, "Emma Smith", HOME, john)
    liam = await joined(stack, "Liam Smith", "liam@example.com", john)
    liams = await stack.send_secure(liam, "Liam's own", "Sent to Liam.", [PDF])
    liams_file = await attachment_of(stack.office.api, liams)
    emmas = await stack.send_secure(emma, "Emma at home", "Sent home.", [PDF])
    # Emma's notice first, so that the latest at home is John's: the session is his.
    await stack.mail_to(HOME, 2)
    johns = await stack.send_secure(john, "John at home", "Sent home.", [PDF])
    await stack.mail_to(HOME, 3)
    link = await stack.notice_link(HOME)

    outsiders = [strangers, strangers_file, "Elsewhere", liams, liams_file, "Liam's own"]
    async with stack.browser() as mailbox:
        assert await sign_in(stack, mailbox, link, HOME) == f"/portal/messages/{johns}"
        for reply_to in (johns, emmas):
            replied = await mailbox.post(
                f"/portal/messages/{reply_to}/reply", data={"subject": "RE", "body": "Thanks."}
            )
            assert replied.status_code == 303, replied.text

        # Emma's id is honoured: only hers, on every tab (the control works at all).
        for tab in TABS:
            only_emma = await tab_for(mailbox, tab, emma)
            assert emmas in only_emma and johns not in only_emma, tab

        wrong = [
            liam,
            stranger,
            strangers,
            "2",
            "garbage",
            "",
            f"{emma}x",
            f"{emma} {john}",
            "' OR 1=1 --",
            "../" * 40,
            "9" * 5000,
        ]
        for tab in TABS:
            for wanted in wrong:
                page = await tab_for(mailbox, tab, wanted)
                assert emmas in page and johns in page, (tab, wanted)
                for outsider in outsiders:
                    assert outsider not in page, (tab, wanted, outsider)
                # The page's links (the control, the tabs, the pager) name the family only.
                assert set(FOR_IN_LINK.findall(page)) <= {john, emma}, (tab, wanted)

        # Emma moves out: her id no longer names anyone of the session's family, so the
        # same filter shows the family as it now is (John's), none of Emma's.
        moved = await stack.office.api.patch(f"/api/v1/patients/{emma}", json={"email": AWAY})
        assert moved.status_code == 200, moved.text
        for tab in TABS:
            page = await tab_for(mailbox, tab, emma)
            assert johns in page and emmas not in page, tab
