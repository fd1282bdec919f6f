"""Two patients at one address: a message's link, passcode and Verify give a session for
that address, which shows the secure emails of every patient of the practice at that
address, each marked with whose it is ("For Emma"), and filterable by person on Inbox,
Sent and Files (``?for=<patient id>``; Inbox's pages keep it). A reply belongs to the
patient of the message it answers: filed to that patient's chart, the alert naming that
patient."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from domain.passcodes import MAX_PASSCODES_PER_HOUR
from infra.portal_sessions import INBOX_PAGE_SIZE
from infra.rate_limits import PASSCODE_PER_ADDRESS
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.passcodes import another_code
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_chart import filed
from tests.web.test_portal import sign_in
from tests.web.test_portal_inbox_pages import MESSAGE_LINK, OLDER_LINK, portal_of
from tests.web.test_rate_limits import client_at, newest_link
from tests.web.test_sent_box import record_sent

HOME = "smithfam@example.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


TABS = ("/portal", "/portal/sent", "/portal/files")
PEOPLE = re.compile(r'<nav class="people"[^>]*>(.*?)</nav>', re.S)
CHOICE = re.compile(r'<a href="([^"]*)"( aria-current="true")?>([^<]*)</a>')
NEWEST_LINK = re.compile(r'<a href="([^"]+)">Newest</a>')


def choices(page: httpx.Response) -> list[tuple[str, bool, str]]:
    """The filter by person's links: (href, whether it is the one shown, its words)."""
    [control] = PEOPLE.findall(page.text)
    return [
        (html.unescape(href), bool(current), words)
        for href, current, words in CHOICE.findall(control)
    ]


async def joined(office: httpx.AsyncClient, name: str, head: str) -> str:
    added = await office.post(
        "/api/v1/patients", json={"name": name, "email": HOME, "guarantor_id": head}
    )
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


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


async def test_family_filters_each_tab_by_person(stack: Stack) -> None:
    john, emma = await family(stack)
    liam = await joined(stack.office.api, "Liam Smith", john)
    emmas = await stack.send_secure(emma, "Braces", "Brackets on Monday.")
    emma_link = await stack.notice_link(HOME)
    johns = await stack.send_secure(john, "Crown", "The crown is ready.")
    await stack.mail_to(HOME, 2)

    async with stack.browser() as mailbox:
        await sign_in(stack, mailbox, emma_link, HOME)
        await reply(mailbox, emmas, "emma.png")
        await reply(mailbox, johns, "john.png")
        for tab in TABS:
            # Everyone, then the family as the session orders it: its own patient first.
            everyone = await mailbox.get(tab)
            assert choices(everyone) == [
                (tab, True, "Everyone"),
                (f"{tab}?for={emma}", False, "Emma"),
                (f"{tab}?for={john}", False, "John"),
                (f"{tab}?for={liam}", False, "Liam"),
            ]
            assert emmas in everyone.text and johns in everyone.text

            only_emma = await mailbox.get(f"{tab}?for={emma}")
            assert only_emma.status_code == 200
            assert emmas in only_emma.text and johns not in only_emma.text, tab
            assert "For Emma" in only_emma.text and "For John" not in only_emma.text
            assert [current for _, current, _ in choices(only_emma)] == [False, True, False, False]
            # The tabs keep Emma shown.
            for other in TABS:
                assert f'href="{other}?for={emma}"' in only_emma.text

            only_john = await mailbox.get(f"{tab}?for={john}")
            assert johns in only_john.text and emmas not in only_john.text, tab

        # Liam has nothing yet: each tab says so, naming him.
        nothing = {
            "/portal": "No secure emails for Liam.",
            "/portal/sent": "You have not sent any replies for Liam.",
            "/portal/files": "No files for Liam.",
        }
        for tab, words in nothing.items():
            only_liam = await mailbox.get(f"{tab}?for={liam}")
            assert words in only_liam.text and emmas not in only_liam.text
            assert johns not in only_liam.text

        # The message page is the same whatever the filter was.
        page = await mailbox.get(f"/portal/messages/{johns}")
        assert page.status_code == 200 and 'class="people"' not in page.text
        assert f"for={emma}" not in page.text


async def test_inbox_pages_keep_the_person_shown(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    john = await add_patient_at_home(office, "John Smith")
    emma = await joined(office.api, "Emma Smith", john)
    now = datetime.now(UTC)
    emmas = [
        (await record_sent(settings, office, emma, now - timedelta(hours=2 * n))).id
        for n in range(INBOX_PAGE_SIZE + 3)
    ]
    johns = [
        (await record_sent(settings, office, john, now - timedelta(hours=2 * n + 1))).id
        for n in range(INBOX_PAGE_SIZE + 3)
    ]

    async with await portal_of(app, settings, john, johns[0]) as browser:
        pages: list[list[str]] = []
        path: str | None = f"/portal?for={emma}"
        while path is not None:
            page = await browser.get(path)
            assert page.status_code == 200, page.text
            pages.append(MESSAGE_LINK.findall(page.text))
            if len(pages) > 1:
                # A later page: its way back to the newest keeps Emma.
                [newest] = NEWEST_LINK.findall(page.text)
                assert html.unescape(newest) == f"/portal?for={emma}"
            older = OLDER_LINK.search(page.text)
            path = html.unescape(older.group(1)) if older else None
            assert path is None or f"for={emma}" in path
        assert [len(page) for page in pages] == [INBOX_PAGE_SIZE, 3]
        assert sum(pages, []) == emmas

        # Everyone: the two interleaved, over three pages.
        first = await browser.get("/portal")
        assert MESSAGE_LINK.findall(first.text)[:2] == [emmas[0], johns[0]]


async def add_patient_at_home(office: Office, name: str) -> str:
    added = await office.api.post("/api/v1/patients", json={"name": name, "email": HOME})
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


async def test_a_patient_alone_at_an_address_has_no_filter(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    ada = await add_patient_at_home(office, "Ada Lovelace")
    ours = await record_sent(settings, office, ada, datetime.now(UTC))
    async with await portal_of(app, settings, ada, ours.id) as browser:
        for tab in TABS:
            for query in ("", f"?for={ada}", "?for=someone"):
                page = await browser.get(f"{tab}{query}")
                assert page.status_code == 200
                assert 'class="people"' not in page.text and "Everyone" not in page.text
                assert re.search(r'href="[^"]*for=', page.text) is None
            inbox = await browser.get(f"/portal?for={ada}")
            assert MESSAGE_LINK.findall(inbox.text) == [ours.id]


async def test_two_of_the_family_with_one_first_name_are_named_in_full(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    elder = await add_patient_at_home(office, "Emma Smith")
    younger = await joined(office.api, "Emma Brown", elder)
    liam = await joined(office.api, "Liam Smith", elder)
    ours = await record_sent(settings, office, younger, datetime.now(UTC))
    async with await portal_of(app, settings, elder, ours.id) as browser:
        inbox = await browser.get("/portal")
        assert [words for _, _, words in choices(inbox)] == [
            "Everyone",
            "Emma Smith",
            "Emma Brown",
            "Liam",
        ]
        assert "For Emma Brown" in inbox.text
        assert f"?for={liam}" in inbox.text


async def test_the_familys_passcode_allowance_is_one_per_address(stack: Stack) -> None:
    """Passcodes actually mailed count against the mailbox, not against each patient at
    it: a family of three cannot be sent three allowances an hour by asking through each
    one's message. Each message's own limit (five an hour) still holds."""
    john, emma = await family(stack)
    liam = await joined(stack.office.api, "Liam Smith", john)
    links: list[str] = []
    for patient in (john, emma, liam):
        await stack.send_secure(patient, "Checkup", "See you soon.")
        links.append(await newest_link(stack, HOME, links))
    per_message = MAX_PASSCODES_PER_HOUR
    async with (
        client_at(stack.app, "10.7.0.1") as first,
        client_at(stack.app, "10.7.0.2") as second,
    ):
        # Two devices, so the per-client limit is not what refuses.
        for link, device in zip(links[:2], (first, second), strict=True):
            for _ in range(per_message):
                assert (await device.post(f"{link}/passcode")).status_code == 303
        assert PASSCODE_PER_ADDRESS.attempts == 2 * per_message
        refused = await first.post(f"{links[2]}/passcode")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many attempts" in refused.text
