"""Every staff read of PHI leaves an audit event (R13, HIPAA §164.312(b)), naming ids only.

A secure email's status page and its API, the chart's list (page and API), a chart
download and a reply read in the Email Client: each request writes its own event, with
who, from where, and which patient and message, and never the subject, a body or a file
name that the response itself showed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from domain.audit import AuditAction
from tests.fixtures.stack import Stack
from tests.web.test_chart import PDF, filed
from tests.web.test_portal import BODY, SUBJECT, send, sign_in

CARD = "insurance-card-jane.pdf"
REPLY_BODY = "The filling on the upper left still aches when I drink something cold."


async def events_of(
    stack: Stack, action: AuditAction, request: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """The response to one request, and the ``action`` events it added to the log."""
    before = {event["id"] for event in await stack.office.audit_events(action=action.value)}
    response = await request()
    assert response.status_code == 200, response.text
    after = await stack.office.audit_events(action=action.value)
    return response, [event for event in after if event["id"] not in before]


async def admin_id(stack: Stack) -> str:
    log_ins = await stack.office.audit_events(action=AuditAction.STAFF_LOG_IN.value)
    return str(log_ins[0]["actor_id"])


async def test_each_staff_read_of_phi_is_audited_without_phi(stack: Stack) -> None:
    secure_email_id, link = await send(stack, "jane@example.com")
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "jane@example.com")
        replied = await patient.post(
            f"{message_path}/reply",
            data={"subject": f"RE: {SUBJECT}", "body": REPLY_BODY},
            files=[("attachments", (CARD, PDF, "application/pdf"))],
        )
        assert replied.status_code == 303, replied.text
    status = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    patient_id, reply_id = status["patient_id"], status["replies"][0]["id"]
    document_id = (await filed(stack, patient_id, 1))[0]["id"]
    staff_id = await admin_id(stack)
    office = stack.office

    reads: list[tuple[AuditAction, Callable[[], Awaitable[httpx.Response]], str]] = [
        # What each response shows that the event must not: the proof that PHI was read.
        (
            AuditAction.OFFICE_VIEW,
            lambda: office.browser.get(f"/secure-emails/{secure_email_id}"),
            SUBJECT,
        ),
        (
            AuditAction.OFFICE_VIEW,
            lambda: office.api.get(f"/api/v1/secure-emails/{secure_email_id}"),
            REPLY_BODY,
        ),
        (
            AuditAction.OFFICE_CHART_LIST,
            lambda: office.browser.get(f"/patients/{patient_id}/chart"),
            CARD,
        ),
        (
            AuditAction.OFFICE_CHART_LIST,
            lambda: office.api.get(f"/api/v1/patients/{patient_id}/chart"),
            CARD,
        ),
        (
            AuditAction.OFFICE_DOWNLOAD,
            lambda: office.browser.get(f"/patients/{patient_id}/chart/{document_id}"),
            CARD,
        ),
        (
            AuditAction.OFFICE_DOWNLOAD,
            lambda: office.api.get(f"/api/v1/patients/{patient_id}/chart/{document_id}"),
            CARD,
        ),
        (
            AuditAction.OFFICE_READ_REPLY,
            lambda: office.browser.get(f"/email-client/replies/{reply_id}"),
            REPLY_BODY,
        ),
    ]
    for action, request, shown in reads:
        response, added = await events_of(stack, action, request)
        where = f"{action.value} for {response.request.url.path}"
        shown_in = response.text + response.headers.get("content-disposition", "")
        assert shown in shown_in, where
        assert len(added) == 1, where
        event = added[0]
        assert event["actor_type"] == "staff" and event["actor_id"] == staff_id, where
        assert event["patient_id"] == patient_id, where
        assert event["client_address"], where
        if action != AuditAction.OFFICE_CHART_LIST:
            assert event["secure_email_id"] == secure_email_id, where
        assert shown not in str(event), where

    everything = str(await stack.office.audit_events())
    for phi in (SUBJECT, BODY, REPLY_BODY, CARD, "plan.pdf", "jane@example.com"):
        assert phi not in everything


async def test_a_guessed_id_is_refused_and_records_no_read(
    stack: Stack,
) -> None:
    # A guessed id answers 404 and reads nothing, so there is no read to record.
    missing = "00000000-0000-0000-0000-000000000000"
    for path in (f"/secure-emails/{missing}", f"/patients/{missing}/chart"):
        assert (await stack.office.browser.get(path)).status_code == 404
    for path in (f"/api/v1/secure-emails/{missing}", f"/api/v1/patients/{missing}/chart"):
        response = await stack.office.api.get(path)
        assert response.status_code == 404 and response.json()["detail"]
    reads = [
        event
        for event in await stack.office.audit_events()
        if event["action"] in (AuditAction.OFFICE_VIEW, AuditAction.OFFICE_CHART_LIST)
    ]
    assert reads == []
