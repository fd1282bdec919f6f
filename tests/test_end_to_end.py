"""One secure email on real parts: Send Secure → notice → passcode → Verify → read."""

from __future__ import annotations

from tests.fixtures.stack import Stack, text_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SUBJECT = "Your crown fitting results"
BODY = "Hello Ada, the lab results for tooth 14 are attached."


async def test_send_secure_then_patient_reads_it(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    sent = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": SUBJECT, "body": BODY},
        files=[("attachments", ("x-ray results.png", PNG, "image/png"))],
    )
    assert sent.status_code == 201, sent.text
    created = sent.json()
    assert set(created) == {"id", "status", "sent_at", "expires_at"}
    await stack.wait_for_status(created["id"], "sent")

    # The notice carries the link and the expiry, and nothing the office wrote (R5).
    (notice,) = await stack.mail_to("ada@example.com", 1)
    raw = notice.as_string()
    for secret in (SUBJECT, BODY, "x-ray", "tooth"):
        assert secret not in raw
    assert "Smile Dental" in notice["Subject"]
    assert "spam" in text_of(notice)
    link = await stack.notice_link("ada@example.com")

    async with stack.browser() as patient:
        page = await patient.get(link)
        assert page.status_code == 200
        assert "View Secure Email" in page.text
        assert SUBJECT not in page.text

        asked = await patient.post(f"{link}/passcode", follow_redirects=True)
        assert asked.status_code == 200
        assert "Passcode" in asked.text and "Verify" in asked.text
        passcode = await stack.passcode("ada@example.com", 2)

        verified = await patient.post(f"{link}/verify", data={"passcode": passcode})
        assert verified.status_code == 303
        message = await patient.get(verified.headers["location"])
        assert message.status_code == 200
        assert SUBJECT in message.text and BODY in message.text
        assert "x-ray results.png" in message.text

        status = await stack.office.api.get(f"/api/v1/secure-emails/{created['id']}")
        attachment = status.json()["attachments"][0]
        assert f"/attachments/{attachment['id']}" in message.text
        file = await patient.get(f"/portal/messages/{created['id']}/attachments/{attachment['id']}")
        assert file.status_code == 200
        assert file.content == PNG
        assert file.headers["content-disposition"].startswith("attachment;")
        assert 'filename="x-ray results.png"' in file.headers["content-disposition"]

    opened = await stack.wait_for_status(created["id"], "opened")
    assert opened["opened_at"] is not None
