"""The office's changes to a sent secure email (R15): withdraw it, move its
expiry, send its notice again, and its timeline; over ``/api/v1`` and the status page.
On the whole stack (Temporal dev server, worker, SMTP catcher), SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from domain.audit import AuditAction
from infra import office_requests
from infra.db.models import SecureEmail
from tests.conftest import make_office, signed_in
from tests.fixtures.processes import free_port
from tests.fixtures.stack import Stack
from tests.web.test_portal import expire_now, run_sql, sign_in
from web.app import create_app
from web.services.changes import NOT_CONFIRMED
from workflows.legacy import LEGACY_WORKFLOW_VERSION

EMAIL = "ada@example.com"


async def send(stack: Stack, email: str = EMAIL) -> tuple[str, str]:
    """A secure email whose notice arrived; its id and the notice link's path."""
    patient_id = await stack.add_patient(email.split("@")[0].title(), email)
    secure_email_id = await stack.send_secure(patient_id, "Crown", "Your crown is ready.")
    link = await stack.notice_link(email)
    await stack.wait_for_status(secure_email_id, "sent")
    return secure_email_id, link


async def detail(stack: Stack, secure_email_id: str) -> dict[str, Any]:
    response = await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def kinds(found: dict[str, Any]) -> list[str]:
    return [event["kind"] for event in found["events"]]


def refused_field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "expires_at"] and error["msg"] and error["type"]
    return str(error["msg"])


def notices(messages: list[Any]) -> list[Any]:
    return [m for m in messages if m["Subject"].startswith("Secure email from")]


# API ------------------------------------------------------------------------------------


async def test_withdraw_twice_and_the_timeline_says_so(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    url = f"/api/v1/secure-emails/{secure_email_id}/withdraw"
    first = await stack.office.api.post(url)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "withdrawn"
    assert first.json()["subject"] == "Crown"  # the body of GET
    again = await stack.office.api.post(url)
    assert again.status_code == 200 and again.json()["status"] == "withdrawn"
    found = await detail(stack, secure_email_id)
    assert found["status"] == "withdrawn"
    # The notice taken by the mail service, then the status that says so.
    assert kinds(found)[:2] == ["notice_emailed", "sent"] and "withdrawn" in kinds(found)
    assert all(set(event) == {"kind", "at"} for event in found["events"])
    # Withdrawn is closed: its expiry stays, and its notice is not sent again.
    later = datetime.now(UTC) + timedelta(days=3)
    moved = await stack.office.api.patch(
        f"/api/v1/secure-emails/{secure_email_id}", json={"expires_at": later.isoformat()}
    )
    assert moved.status_code == 409 and "withdrawn" in moved.json()["detail"]
    resent = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/resend-notice")
    assert resent.status_code == 409 and "withdrawn" in resent.json()["detail"]
    withdrawals = await stack.office.audit_events(
        action=AuditAction.WITHDRAW.value, secure_email_id=secure_email_id
    )
    assert len(withdrawals) == 1  # twice is once
    assert withdrawals[0]["actor_type"] == "staff" and withdrawals[0]["patient_id"]


async def test_withdraw_an_expired_one_is_refused_in_words(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    await expire_now(stack, secure_email_id)
    refused = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/withdraw")
    assert refused.status_code == 409
    assert "expired" in refused.json()["detail"]
    assert (await detail(stack, secure_email_id))["status"] == "expired"


async def test_a_change_whose_request_is_gone_is_refused_in_words(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow finds no request of the office's to claim (used, or dropped, by the
    time it asks): the office hears that nothing changed, not a 500."""
    secure_email_id, _ = await send(stack)
    recorded = office_requests.record

    def recorded_then_lost(*args: Any, **kwargs: Any) -> str:
        recorded(*args, **kwargs)
        return str(uuid.uuid4())  # the update names a request the database does not hold

    monkeypatch.setattr(office_requests, "record", recorded_then_lost)
    refused = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/withdraw")
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == NOT_CONFIRMED
    assert (await detail(stack, secure_email_id))["status"] == "sent"


async def test_change_expiry_and_its_refusals(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    url = f"/api/v1/secure-emails/{secure_email_id}"
    sent_at = datetime.fromisoformat((await detail(stack, secure_email_id))["sent_at"])
    new = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    changed = await stack.office.api.patch(url, json={"expires_at": new.isoformat()})
    assert changed.status_code == 200, changed.text
    assert datetime.fromisoformat(changed.json()["expires_at"]) == new
    found = await detail(stack, secure_email_id)
    assert datetime.fromisoformat(found["expires_at"]) == new
    assert "expiry_changed" in kinds(found)
    (event,) = await stack.office.audit_events(
        action=AuditAction.EXPIRY_CHANGED.value, secure_email_id=secure_email_id
    )
    assert new.isoformat() in event["detail"]

    soon = datetime.now(UTC) + timedelta(minutes=30)
    assert "one hour" in refused_field(
        await stack.office.api.patch(url, json={"expires_at": soon.isoformat()})
    )
    late = sent_at + timedelta(days=91)
    assert "90 days" in refused_field(
        await stack.office.api.patch(url, json={"expires_at": late.isoformat()})
    )
    naive = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None)
    assert "zone" in refused_field(
        await stack.office.api.patch(url, json={"expires_at": naive.isoformat()})
    )
    refused_field(await stack.office.api.patch(url, json={"expires_at": "next Tuesday"}))
    # None of them moved it.
    assert datetime.fromisoformat((await detail(stack, secure_email_id))["expires_at"]) == new


async def test_resend_notice_three_times_a_day(stack: Stack) -> None:
    secure_email_id, link = await send(stack)
    url = f"/api/v1/secure-emails/{secure_email_id}/resend-notice"
    first = await stack.office.api.post(url)
    assert first.status_code == 202, first.text
    assert first.json() == {"resends_left": 2}
    again = notices(await stack.mail_to(EMAIL, 2))
    assert len(again) == 2
    assert link in again[-1].get_body(("plain",)).get_content()  # the same link
    assert (await stack.office.api.post(url)).json() == {"resends_left": 1}
    assert (await stack.office.api.post(url)).json() == {"resends_left": 0}
    fourth = await stack.office.api.post(url)
    assert fourth.status_code == 409
    assert "3 times today" in fourth.json()["detail"]
    found = await detail(stack, secure_email_id)
    assert kinds(found).count("notice_resent") == 3
    resends = await stack.office.audit_events(
        action=AuditAction.NOTICE_RESENT.value, secure_email_id=secure_email_id
    )
    assert len(resends) == 3


async def test_opened_notice_is_not_resent_and_the_timeline_shows_the_passcode(
    stack: Stack,
) -> None:
    secure_email_id, link = await send(stack)
    async with stack.browser() as patient:
        await sign_in(stack, patient, link, EMAIL)
    found = await stack.wait_for_status(secure_email_id, "opened")
    assert {"sent", "passcode_sent", "opened"} <= set(kinds(found))
    assert kinds(found).index("sent") < kinds(found).index("passcode_sent")
    refused = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/resend-notice")
    assert refused.status_code == 409
    assert "already opened" in refused.json()["detail"]


async def test_a_later_visit_is_viewed_again_once_per_session(stack: Stack) -> None:
    secure_email_id, link = await send(stack)
    async with stack.browser() as first:
        page = await sign_in(stack, first, link, EMAIL)
        for _ in range(2):
            assert (await first.get(page)).status_code == 200
    await stack.wait_for_status(secure_email_id, "opened")
    assert "viewed" not in kinds(await detail(stack, secure_email_id))  # that was opening it
    async with stack.browser() as second:
        page = await sign_in(stack, second, link, EMAIL)
        for _ in range(3):
            assert (await second.get(page)).status_code == 200
    found = kinds(await detail(stack, secure_email_id))
    assert found.count("viewed") == 1
    assert found.index("opened") < found.index("viewed")


async def test_another_practice_gets_404(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    other = await make_office(stack.app, stack.settings)
    try:
        for method, path, body in [
            ("POST", "/withdraw", None),
            ("PATCH", "", {"expires_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}),
            ("POST", "/resend-notice", None),
            ("GET", "", None),
        ]:
            response = await other.api.request(
                method, f"/api/v1/secure-emails/{secure_email_id}{path}", json=body
            )
            assert response.status_code == 404, (method, path)
        for path in ("/withdraw", "/resend-notice", "/expiry"):
            page = await other.browser.post(f"/secure-emails/{secure_email_id}{path}")
            assert page.status_code == 404, path
    finally:
        await other.aclose()
    assert (await detail(stack, secure_email_id))["status"] == "sent"


async def test_old_workflow_cannot_be_changed(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    await run_sql(
        stack,
        update(SecureEmail)
        .where(SecureEmail.id == secure_email_id)
        .values(workflow_version=LEGACY_WORKFLOW_VERSION),
    )
    for path in ("/withdraw", "/resend-notice"):
        refused = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}{path}")
        assert refused.status_code == 409
        assert "sent before this could be changed" in refused.json()["detail"]


async def test_temporal_unavailable_is_503_in_words(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    # The same database, and a Temporal nobody listens at.
    cut_off = stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    app = create_app(cut_off)
    async with app.router.lifespan_context(app):
        api, browser, _ = await signed_in(app, stack.office.email, stack.office.token)
        try:
            response = await api.post(f"/api/v1/secure-emails/{secure_email_id}/withdraw")
            assert response.status_code == 503
            assert "unavailable" in response.json()["detail"]
            page = await browser.post(f"/secure-emails/{secure_email_id}/resend-notice")
            assert page.status_code == 503 and "unavailable" in page.text
            assert "Crown" in page.text  # the status page, not a bare error
        finally:
            await api.aclose()
            await browser.aclose()
    assert (await detail(stack, secure_email_id))["status"] == "sent"


# The status page ------------------------------------------------------------------------


def page_status(html: str) -> str:
    found = re.search(r'<dd id="status">(\w+)</dd>', html)
    assert found
    return found.group(1)


async def test_page_withdraws_after_confirming(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    browser = stack.office.browser
    page = await browser.get(f"/secure-emails/{secure_email_id}")
    assert '<h2 id="timeline-heading">Timeline</h2>' in page.text
    # One line for the notice handed to mail (the status "sent" says the same, not shown).
    assert len(re.findall(r"<li>Notice emailed to the patient, <time datetime=", page.text)) == 1
    assert "Resend notice" in page.text and 'type="datetime-local"' in page.text
    confirm = await browser.get(f"/secure-emails/{secure_email_id}/withdraw")
    assert confirm.status_code == 200
    assert "Withdraw this secure email? The patient will no longer be able to read it." in (
        confirm.text
    )
    assert "Cancel" in confirm.text and 'name="csrf_token"' in confirm.text
    # Without the form's token nothing happens.
    forged = await httpx.AsyncClient.post(
        browser, f"/secure-emails/{secure_email_id}/withdraw", data={}
    )
    assert forged.status_code == 403
    done = await browser.post(f"/secure-emails/{secure_email_id}/withdraw")
    assert done.status_code == 303
    shown = await browser.get(done.headers["location"])
    assert page_status(shown.text) == "withdrawn"
    assert "The patient can no longer read this secure email." in shown.text
    assert "<li>Withdrawn, <time" in shown.text
    assert "Resend notice" not in shown.text and "Change expiry" not in shown.text


async def test_page_changes_expiry_in_the_practice_zone(stack: Stack) -> None:
    await stack.office.api.patch("/api/v1/practice", json={"time_zone": "America/Chicago"})
    secure_email_id, _ = await send(stack)
    browser = stack.office.browser
    url = f"/secure-emails/{secure_email_id}/expiry"
    chicago = ZoneInfo("America/Chicago")
    wanted = (datetime.now(chicago) + timedelta(days=10)).replace(
        hour=17, minute=0, second=0, microsecond=0
    )
    typed = wanted.strftime("%Y-%m-%dT%H:%M")
    done = await browser.post(url, data={"expires_at": typed})
    assert done.status_code == 303, done.text
    assert "The expiry was changed." in (await browser.get(done.headers["location"])).text
    found = await detail(stack, secure_email_id)
    assert datetime.fromisoformat(found["expires_at"]) == wanted.astimezone(UTC)
    assert "expiry_changed" in kinds(found)

    soon = (datetime.now(chicago) + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M")
    refused = await browser.post(url, data={"expires_at": soon})
    assert refused.status_code == 422
    assert "at least one hour from now" in refused.text
    assert f'value="{soon}"' in refused.text  # what was typed is kept
    assert 'aria-invalid="true"' in refused.text
    garbled = await browser.post(url, data={"expires_at": "tomorrow-ish"})
    assert garbled.status_code == 422
    assert "Enter the new expiry as a date and a time" in garbled.text
    assert 'value="tomorrow-ish"' in garbled.text


async def test_page_resends_the_notice(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    browser = stack.office.browser
    url = f"/secure-emails/{secure_email_id}/resend-notice"
    done = await browser.post(url)
    assert done.status_code == 303
    shown = await browser.get(done.headers["location"])
    assert "The notice was sent again. It can be sent again 2 more times today." in shown.text
    assert len(notices(await stack.mail_to(EMAIL, 2))) == 2
    await browser.post(url)
    await browser.post(url)
    refused = await browser.post(url)
    assert refused.status_code == 409
    assert "3 times today" in refused.text
    assert "Notice sent again" in refused.text
