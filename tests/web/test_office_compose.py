"""The office's compose page: Send Secure from the browser, refusals keep what was typed."""

from __future__ import annotations

from tests.fixtures.stack import Stack

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_send_secure_from_compose_page(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    page = await stack.office.browser.get(f"/patients/{patient_id}/compose")
    assert page.status_code == 200
    for label in ('for="subject">Subject', 'for="body">Body', 'for="attachments">Attachments'):
        assert label in page.text
    assert "Send Secure" in page.text
    sent = await stack.office.browser.post(
        f"/patients/{patient_id}/compose",
        data={"subject": "Cleaning reminder", "body": "See you Tuesday."},
        files=[("attachments", ("map.png", PNG, "image/png"))],
    )
    assert sent.status_code == 303
    status_page = await stack.office.browser.get(sent.headers["location"])
    assert "Cleaning reminder" in status_page.text
    assert "map.png" in status_page.text
    assert "Expires at" in status_page.text
    await stack.notice_link("ada@example.com")


async def test_compose_page_keeps_typing_on_refusal(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    refused = await stack.office.browser.post(
        f"/patients/{patient_id}/compose",
        data={"subject": "Cleaning reminder", "body": "See you Tuesday."},
        files=[("attachments", ("virus.exe", b"MZ\x90\x00", "application/octet-stream"))],
    )
    assert refused.status_code == 422
    assert "Nothing was sent" in refused.text
    assert "virus.exe" in refused.text and ".exe" in refused.text
    assert 'value="Cleaning reminder"' in refused.text
    assert "See you Tuesday." in refused.text
    blank = await stack.office.browser.post(
        f"/patients/{patient_id}/compose", data={"subject": "", "body": "Body kept"}
    )
    assert blank.status_code == 422
    assert "Subject is required" in blank.text and "Body kept" in blank.text


async def test_compose_page_refuses_when_disabled(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    await stack.office.api.put("/api/v1/practice", json={"secure_email_enabled": False})
    refused = await stack.office.browser.post(
        f"/patients/{patient_id}/compose", data={"subject": "Hi", "body": "Hello"}
    )
    assert refused.status_code == 409
    assert "not enabled" in refused.text


async def test_compose_page_for_unknown_patient_not_found(stack: Stack) -> None:
    response = await stack.office.browser.get("/patients/nobody/compose")
    assert response.status_code == 404
    assert "Patient not found" in response.text
