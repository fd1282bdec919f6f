"""The Email Client's Inbox shows each reply's first line, escaped and cut short, and its
read is audited naming the patients; the status page's "Replied" lines open the reply."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from domain.audit import AuditAction
from domain.secure_email import EventKind
from infra import timeline
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail
from infra.replies import Written, add_to_thread, preview_of
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_sent_box import add_patient, record_sent

LONG = "Could we move the crown fitting to the afternoon, " * 4  # 200 characters
MARKUP = "<b>Thanks</b> & see you <script>alert(1)</script>"


def test_preview_is_the_first_line_with_words_cut_short() -> None:
    assert preview_of("\n  \n  Hello there  \nSecond line") == "Hello there"
    assert preview_of("") == ""
    cut = preview_of(LONG)
    assert len(cut) == 80 and cut.endswith("…") and LONG.startswith(cut[:-1])
    assert preview_of("x" * 80) == "x" * 80


async def test_inbox_shows_each_replys_first_line(settings: Settings, office: Office) -> None:
    patient_id = await add_patient(office, "Ada Lovelace")
    sent = await record_sent(settings, office, patient_id, datetime.now(UTC) - timedelta(hours=3))
    bodies = [f"\n{LONG}\nSecond line never shown", f"{MARKUP}\nmore"]
    reply_ids = [str(uuid.uuid4()) for _ in bodies]
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        secure_email = await db.scalar(select(SecureEmail).where(SecureEmail.id == sent.id))
        assert secure_email is not None
        for n, (reply_id, body) in enumerate(zip(reply_ids, bodies, strict=True)):
            at = sent.sent_at + timedelta(hours=n + 1)
            await add_to_thread(db, secure_email, reply_id, Written("RE: x", body, []), at)
            await timeline.add(db, sent.id, EventKind.REPLIED, at, f"reply:{reply_id}")
        await db.commit()
    await engine.dispose()

    inbox = await office.browser.get("/email-client")
    assert inbox.status_code == 200
    assert f'<p class="hint preview">{preview_of(LONG)}</p>' in inbox.text
    assert "Second line never shown" not in inbox.text and "more" not in inbox.text
    # Escaped: what a patient wrote is never markup on the office's page.
    assert "<script>" not in inbox.text and "<b>Thanks" not in inbox.text
    assert "&lt;b&gt;Thanks&lt;/b&gt; &amp; see you &lt;script&gt;" in inbox.text
    # The read of the list, previews and all, is audited naming the patient.
    (listed,) = await office.audit_events(action=AuditAction.OFFICE_INBOX_LIST.value)
    assert patient_id in listed["detail"] and "Thanks" not in str(listed)

    # The status page's "Replied" lines each open their reply.
    page = await office.browser.get(f"/secure-emails/{sent.id}")
    for reply_id in reply_ids:
        assert f'<li><a href="/email-client/replies/{reply_id}">Replied</a>, <time' in page.text
    assert page.text.index('id="timeline-heading"') < page.text.index('id="changes-heading"')
