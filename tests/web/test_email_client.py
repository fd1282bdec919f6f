"""The Email Client: replies unread first, opening one reads it and settles its alert."""

from __future__ import annotations

from typing import Any

from domain.audit import AuditAction
from tests.conftest import make_office
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_alerts import (
    REPLY_BODY,
    REPLY_SUBJECT,
    open_alert,
    opened_secure_email,
    patient_replies,
)
from tests.web.test_portal import SUBJECT

PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 20


async def test_email_client_unread_first_and_opening_marks_read(stack: Stack) -> None:
    ada_email_id, ada_id = await opened_secure_email(stack, "ada@example.com")
    grace_email_id, grace_id = await opened_secure_email(stack, "grace@example.com")
    ada_reply = await patient_replies(
        stack, ada_email_id, files=[("x-ray.pdf", PDF, "application/pdf")]
    )
    grace_reply = await patient_replies(stack, grace_email_id, body="Tuesday suits me.")
    await open_alert(stack.office, ada_reply)
    await open_alert(stack.office, grace_reply)

    client = await stack.office.browser.get("/email-client")
    assert client.status_code == 200
    # Both unread: the newest first.
    assert client.text.index("Grace") < client.text.index("Ada")
    assert client.text.count(">Unread<") == 4  # a marker per thread and per reply
    assert SUBJECT in client.text and "1 reply, 1 unread" in client.text
    # Each reply's first line, a preview (the whole of these short ones).
    assert REPLY_BODY in client.text and "Tuesday suits me." in client.text
    # Reading the list (its subjects are PHI) is audited by count and the patients' ids
    # in the order shown, never by subject.
    (listed,) = await stack.office.audit_events(action=AuditAction.OFFICE_INBOX_LIST.value)
    assert listed["detail"] == f"2 thread(s); patients: {grace_id} {ada_id}"
    assert listed["client_address"]
    assert SUBJECT not in str(await stack.office.audit_events())

    opened = await stack.office.browser.get(f"/email-client/replies/{grace_reply}")
    assert opened.status_code == 200
    assert "Tuesday suits me." in opened.text
    assert REPLY_SUBJECT in opened.text
    assert f'href="/secure-emails/{grace_email_id}"' in opened.text
    answer = f"/patients/{grace_id}/compose?answering={grace_email_id}"
    assert answer in opened.text and ">Answer<" in opened.text
    assert "Treatment+plan" not in opened.text  # no words of the message in a URL

    # Grace's is read now: Ada's unread thread comes first although it is older.
    client = await stack.office.browser.get("/email-client")
    assert client.text.index("Ada") < client.text.index("Grace")
    assert client.text.count(">Unread<") == 2
    alerts = (await stack.office.api.get("/api/v1/alerts")).json()["items"]
    assert [alert["reply_id"] for alert in alerts] == [ada_reply]

    ada = await stack.office.browser.get(f"/email-client/replies/{ada_reply}")
    assert REPLY_BODY in ada.text and "x-ray.pdf" in ada.text
    assert f'href="/patients/{ada_id}/chart"' in ada.text
    assert (await stack.office.api.get("/api/v1/alerts")).json() == {"items": []}
    file_link = f"/email-client/replies/{ada_reply}/files/"
    attachment_id = ada.text.split(file_link, 1)[1].split('"', 1)[0]
    file = await stack.office.browser.get(file_link + attachment_id)
    assert file.status_code == 200 and file.content == PDF
    assert file.headers["content-disposition"].startswith("attachment;")
    # A file of another reply is not found under this one.
    wrong = await stack.office.browser.get(
        f"/email-client/replies/{grace_reply}/files/{attachment_id}"
    )
    assert wrong.status_code == 404


async def test_answer_prefills_compose_subject(stack: Stack) -> None:
    secure_email_id, _ = await opened_secure_email(stack, "ada@example.com")
    patient_id = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()[
        "patient_id"
    ]
    compose = await stack.office.browser.get(
        f"/patients/{patient_id}/compose", params={"answering": secure_email_id}
    )
    assert compose.status_code == 200
    assert 'value="RE: Treatment plan"' in compose.text
    blank = await stack.office.browser.get(f"/patients/{patient_id}/compose")
    assert 'id="subject" name="subject" value=""' in blank.text
    # Another patient's thread lends nothing to this patient's compose page.
    grace_id = await stack.add_patient("Grace", "grace@example.com")
    other = await stack.office.browser.get(
        f"/patients/{grace_id}/compose", params={"answering": secure_email_id}
    )
    assert 'id="subject" name="subject" value=""' in other.text


async def test_secure_email_api_lists_replies(stack: Stack) -> None:
    secure_email_id, _ = await opened_secure_email(stack, "ada@example.com")
    reply_id = await patient_replies(
        stack, secure_email_id, files=[("x-ray.pdf", PDF, "application/pdf")]
    )

    async def replied() -> dict[str, Any] | None:
        status = await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")
        body: dict[str, Any] = status.json()
        return body if body["status"] == "replied" else None

    status = await eventually(replied)
    [reply] = status["replies"]
    assert reply["id"] == reply_id and reply["body"] == REPLY_BODY and reply["sent_at"]
    [file] = reply["attachments"]
    assert file["filename"] == "x-ray.pdf" and file["size"] == len(PDF)
    assert file["content_type"] == "application/pdf"
    # The office's own attachment stays apart from the patient's.
    assert [a["filename"] for a in status["attachments"]] == ["plan.pdf"]


async def test_other_practice_cannot_see_replies(stack: Stack) -> None:
    secure_email_id, _ = await opened_secure_email(stack, "ada@example.com")
    reply_id = await patient_replies(stack, secure_email_id)
    await open_alert(stack.office, reply_id)
    other = await make_office(stack.app, stack.settings)
    try:
        client = await other.browser.get("/email-client")
        assert client.status_code == 200 and "No replies yet." in client.text
        refused = await other.browser.get(f"/email-client/replies/{reply_id}")
        assert refused.status_code == 404 and REPLY_BODY not in refused.text
        status = await other.api.get(f"/api/v1/secure-emails/{secure_email_id}")
        assert status.status_code == 404
    finally:
        await other.aclose()
    # Looking from another practice read nothing.
    assert [
        a["reply_id"] for a in (await stack.office.api.get("/api/v1/alerts")).json()["items"]
    ] == [reply_id]


async def test_email_client_needs_log_in(stack: Stack) -> None:
    async with stack.browser() as anonymous:
        response = await anonymous.get("/email-client")
        assert response.status_code == 303 and response.headers["location"] == "/login"
