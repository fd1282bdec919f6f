"""A withdrawn secure email opens nothing (R15): the attacker is whoever holds its link,
a passcode mailed before the office withdrew it, or a portal session already open.

On the whole stack (Temporal dev server, worker, SMTP catcher), SQLite and PostgreSQL:
the office withdraws through the API, then each way in is tried.
"""

from __future__ import annotations

from tests.fixtures.stack import Stack
from tests.web.test_portal import sign_in

EMAIL = "wes@example.com"
SUBJECT, BODY = "Biopsy result", "The biopsy came back clear."
KEPT_SUBJECT = "Cleaning on Friday"
PDF = b"%PDF-1.4\nbiopsy\n"
WITHDRAWN_WORDS = "withdrawn by Smile Dental"


async def send(stack: Stack, patient_id: str, subject: str, body: str, filename: str) -> str:
    sent = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": subject, "body": body},
        files=[("attachments", (filename, PDF, "application/pdf"))],
    )
    assert sent.status_code == 201, sent.text
    secure_email_id = str(sent.json()["id"])
    await stack.wait_for_status(secure_email_id, "sent")
    return secure_email_id


def shows_nothing_of_it(text: str) -> None:
    assert SUBJECT not in text and BODY not in text and "biopsy-wes.pdf" not in text


async def test_withdrawn_message_opens_nothing(stack: Stack) -> None:
    patient_id = await stack.add_patient("Wes Tan", EMAIL)
    kept_id = await send(stack, patient_id, KEPT_SUBJECT, "See you at nine.", "map.pdf")
    kept_link = await stack.notice_link(EMAIL)
    withdrawn_id = await send(stack, patient_id, SUBJECT, BODY, "biopsy-wes.pdf")
    link = await stack.notice_link(EMAIL)
    assert link != kept_link

    async with stack.browser() as session, stack.browser() as stranger:
        # A session open on the message, its attachment's address known, and a passcode
        # for it already mailed to a second browser.
        message_page = await sign_in(stack, session, link, EMAIL)
        page = await session.get(message_page)
        assert page.status_code == 200 and BODY in page.text
        download = next(
            line.split('"')[1]
            for line in page.text.splitlines()
            if "/attachments/" in line and "href" in line
        )
        before = len(await stack.mail_to(EMAIL, 1))
        await stranger.post(f"{link}/passcode")
        mailed = await stack.passcode(EMAIL, before + 1)

        withdrawn = await stack.office.api.post(f"/api/v1/secure-emails/{withdrawn_id}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text

        # The open session loses it at once: the message, its file, Reply All.
        for gone in (
            await session.get(message_page),
            await session.get(download),
            await session.get(f"/portal/messages/{withdrawn_id}/reply"),
            await session.post(
                f"/portal/messages/{withdrawn_id}/reply",
                data={"subject": "RE", "body": "Thanks!"},
            ),
        ):
            assert gone.status_code == 410, (gone.request.url, gone.status_code)
            assert WITHDRAWN_WORDS in gone.text
            shows_nothing_of_it(gone.text)
        # Inbox and Files say it was withdrawn, and show the other message as before.
        for tab in ("/portal", "/portal/files", "/portal/sent"):
            listed = await session.get(tab)
            assert listed.status_code == 200
            shows_nothing_of_it(listed.text)
            assert f"/portal/messages/{withdrawn_id}" not in listed.text
        inbox = (await session.get("/portal")).text
        assert WITHDRAWN_WORDS in inbox and KEPT_SUBJECT in inbox
        assert WITHDRAWN_WORDS in (await session.get("/portal/files")).text

        # The link, a new passcode, and the passcode mailed before: all refused.
        for refused in (
            await stranger.get(link),
            await stranger.post(f"{link}/passcode"),
            await stranger.post(f"{link}/verify", data={"passcode": mailed}),
        ):
            assert refused.status_code == 410, (refused.request.url, refused.status_code)
            assert WITHDRAWN_WORDS in refused.text
            shows_nothing_of_it(refused.text)
        assert "portal_session" not in stranger.cookies
        assert len(await stack.mail_to(EMAIL, 1)) == before + 1  # no passcode mailed

        # The other message still opens.
        assert (await stranger.get(kept_link)).status_code == 200
        assert (await session.get(f"/portal/messages/{kept_id}")).status_code == 200
