"""The portal's Inbox a page at a time: the patient's messages newest first, "Older"
pages on without repeating or losing one; those sent to another address are not listed,
a withdrawn or expired one is listed without its subject (an expired one opens only its
expiry warning); no body is read."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail
from infra.portal_sessions import INBOX_PAGE_SIZE
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.rows import portal_session_token
from tests.web.test_sent_box import BODY, add_patient, record_sent
from web.cookies import PORTAL_COOKIE

MESSAGE_LINK = re.compile(r'<a href="/portal/messages/([0-9a-f-]{36})">')
OLDER_LINK = re.compile(r'<a href="([^"]+)" rel="next">Older</a>')

Browser = httpx.AsyncClient


async def portal_of(app: FastAPI, settings: Settings, patient_id: str, verified: str) -> Browser:
    """The patient's browser after Verify on ``verified`` (the session it would start)."""
    token = await portal_session_token(settings, patient_id, verified)
    browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://portal.test"
    )
    browser.cookies.set(PORTAL_COOKIE, token)
    return browser


async def every_page(browser: Browser) -> tuple[list[list[str]], str]:
    pages: list[list[str]] = []
    shown = ""
    path: str | None = "/portal"
    while path is not None:
        page = await browser.get(path)
        assert page.status_code == 200, page.text
        pages.append(MESSAGE_LINK.findall(page.text))
        shown += page.text
        older = OLDER_LINK.search(page.text)
        path = html.unescape(older.group(1)) if older else None
    return pages, shown


async def test_inbox_pages_newest_first_closed_ones_without_subject(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    now = datetime.now(UTC)
    readable = [
        await record_sent(settings, office, ada, now - timedelta(hours=n), subject=f"Plan {n}")
        for n in range(INBOX_PAGE_SIZE + 3)
    ]
    expired = await record_sent(
        settings, office, ada, now - timedelta(days=8), subject="Last year's plan"
    )
    withdrawn = await record_sent(settings, office, ada, now - timedelta(minutes=30))
    elsewhere = await record_sent(settings, office, ada, now - timedelta(minutes=10))
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == withdrawn.id)
            .values(status="withdrawn", subject="Withdrawn words")
        )
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == elsewhere.id)
            .values(recipient_address="ada-old@example.com", subject="Sent elsewhere")
        )
        await db.commit()
    await engine.dispose()

    async with await portal_of(app, settings, ada, readable[0].id) as browser:
        pages, shown = await every_page(browser)

        # The withdrawn line (no link) is one of the first page's fifty; the expired one,
        # eight days old, is the last line of all.
        assert [len(page) for page in pages] == [INBOX_PAGE_SIZE - 1, 5]
        assert sum(pages, []) == [message.id for message in readable] + [expired.id]
        assert shown.count("was withdrawn by Smile Dental") == 1
        assert shown.count("Expired — call the office to have it sent again.") == 1
        for never in ("Withdrawn words", "Sent elsewhere", expired.subject, BODY):
            assert never not in shown
        assert elsewhere.id not in shown

        # Opened, the expired one shows its warning, nothing of it.
        opened = await browser.get(f"/portal/messages/{expired.id}")
        assert opened.status_code == 410
        assert "This secure email has expired" in opened.text
        assert expired.subject not in opened.text and BODY not in opened.text

        for cursor in ("zzz", "%FF", "MjAyNi0xMS0wMlQwOTozMDowMA"):
            refused = await browser.get(f"/portal?cursor={cursor}")
            assert refused.status_code == 422, cursor
            assert "This page of the Inbox does not exist" in refused.text
