"""The Email Client a page at a time, from each thread's counters: unread threads first,
then by the latest reply; "Older" pages on without repeating or losing a thread, and
reading a reply moves its thread when it was the last unread one."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import select

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Reply
from infra.replies import THREADS_PAGE_SIZE
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_sent_box import BASE, Sent, add_patient, record_sent

THREAD_LINK = re.compile(r'<a href="/secure-emails/([0-9a-f-]{36})">')
OLDER_LINK = re.compile(r'<a href="([^"]+)" rel="next">Older</a>')


async def replies_of(settings: Settings, secure_email_id: str) -> list[str]:
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        found = await db.scalars(
            select(Reply.id).where(Reply.secure_email_id == secure_email_id).order_by(Reply.id)
        )
        ids = list(found)
    await engine.dispose()
    return ids


async def every_page(office: Office) -> list[list[str]]:
    """The thread ids of each page, following "Older" to the end."""
    pages: list[list[str]] = []
    path: str | None = "/email-client"
    while path is not None:
        page = await office.browser.get(path)
        assert page.status_code == 200, page.text
        pages.append(THREAD_LINK.findall(page.text))
        older = OLDER_LINK.search(page.text)
        path = html.unescape(older.group(1)) if older else None
    return pages


async def test_pages_unread_first_then_latest_without_repeats(
    settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    answered: list[Sent] = []
    for n in range(THREADS_PAGE_SIZE + 3):
        answered.append(
            await record_sent(
                settings, office, ada, BASE + timedelta(hours=n), subject=f"T{n}", replies=1
            )
        )
    unanswered = await record_sent(settings, office, ada, BASE + timedelta(days=30))
    # The office reads every reply but those of the ten oldest threads.
    for thread in answered[10:]:
        for reply_id in await replies_of(settings, thread.id):
            opened = await office.browser.get(f"/email-client/replies/{reply_id}")
            assert opened.status_code == 200

    pages = await every_page(office)

    unread_newest_first = [t.id for t in reversed(answered[:10])]
    read_newest_first = [t.id for t in reversed(answered[10:])]
    assert [len(page) for page in pages] == [THREADS_PAGE_SIZE, 3]
    assert sum(pages, []) == unread_newest_first + read_newest_first
    assert unanswered.id not in sum(pages, [])


async def test_reading_the_last_unread_reply_moves_the_thread(
    settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    older = await record_sent(settings, office, ada, BASE, subject="Crown", replies=2)
    newer = await record_sent(settings, office, ada, BASE + timedelta(days=1), replies=1)
    newer_reply, *_ = await replies_of(settings, newer.id)
    assert (await office.browser.get(f"/email-client/replies/{newer_reply}")).status_code == 200
    page = (await office.browser.get("/email-client")).text
    assert THREAD_LINK.findall(page) == [older.id, newer.id]
    assert "2 replies, 2 unread" in page and "1 reply · latest" in page

    first, second = await replies_of(settings, older.id)
    assert (await office.browser.get(f"/email-client/replies/{first}")).status_code == 200
    # Opened twice: counted once.
    assert (await office.browser.get(f"/email-client/replies/{first}")).status_code == 200
    page = (await office.browser.get("/email-client")).text
    assert "2 replies, 1 unread" in page
    assert THREAD_LINK.findall(page) == [older.id, newer.id]

    assert (await office.browser.get(f"/email-client/replies/{second}")).status_code == 200
    page = (await office.browser.get("/email-client")).text
    # Both read: the latest reply first (the newer thread's came a day later).
    assert THREAD_LINK.findall(page) == [newer.id, older.id]
    assert "unread-marker" not in page and " unread ·" not in page


async def test_a_cursor_not_ours_is_refused_in_words(office: Office) -> None:
    for cursor in ("zzz", "u!!", "rbm90aGluZw", "%FF"):
        refused = await office.browser.get(f"/email-client?cursor={cursor}")
        assert refused.status_code == 422, cursor
        assert "Not a cursor this list gave out" in refused.text
