"""The office's compose page: Send Secure from the browser, refusals keep what was typed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from web.templating import moment_in

SENT_SAID = "Sent. Ada Lovelace will receive a notice with a link."

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_send_secure_from_compose_page(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    page = await stack.office.browser.get(f"/patients/{patient_id}/compose")
    assert page.status_code == 200
    for label in ('for="subject">Subject', 'for="body">Body', 'for="attachments">Attachments'):
        assert label in page.text
    assert "Send Secure" in page.text
    # When it would expire, from the practice's seven days, in its zone and the one format.
    expires = re.search(r'Expires <time datetime="([^"]+)">([^<]+)</time>', page.text)
    assert expires is not None
    expected = datetime.now(UTC) + timedelta(days=7)
    assert abs(datetime.fromisoformat(expires[1]) - expected) < timedelta(minutes=1)
    assert expires[2] == moment_in(datetime.fromisoformat(expires[1]), "America/New_York")
    sent = await stack.office.browser.post(
        f"/patients/{patient_id}/compose",
        data={"subject": "Cleaning reminder", "body": "See you Tuesday."},
        files=[("attachments", ("map.png", PNG, "image/png"))],
    )
    assert sent.status_code == 303
    # Nothing in the URL says "sent": a bookmark or Back must not say it again.
    location = sent.headers["location"]
    assert "?" not in location
    status_page = await stack.office.browser.get(location)
    assert "Cleaning reminder" in status_page.text
    assert "map.png" in status_page.text
    assert "Expires at" in status_page.text
    assert SENT_SAID in status_page.text
    again = await stack.office.browser.get(location)
    assert again.status_code == 200 and "Cleaning reminder" in again.text
    assert SENT_SAID not in again.text
    await stack.notice_link("ada@example.com")

    # Once the mail service took the notice, the timeline says so.
    async def emailed() -> str | None:
        page = await stack.office.browser.get(location)
        return page.text if "Notice emailed to the patient" in page.text else None

    shown = await eventually(emailed, what="the notice emailed line")
    assert re.search(r"<li>Notice emailed to the patient, <time datetime=", shown)


async def test_sent_is_said_on_that_page_only(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    first = await stack.office.browser.post(
        f"/patients/{patient_id}/compose", data={"subject": "First", "body": "One"}
    )
    second = await stack.office.browser.post(
        f"/patients/{patient_id}/compose", data={"subject": "Second", "body": "Two"}
    )
    assert first.status_code == second.status_code == 303
    # The first one's page, visited later, is not the page the last send landed on.
    earlier = await stack.office.browser.get(first.headers["location"])
    assert "First" in earlier.text and SENT_SAID not in earlier.text
    # And the cookie that said it is spent by that visit.
    landed = await stack.office.browser.get(second.headers["location"])
    assert SENT_SAID not in landed.text


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
