"""What a history gives away, and what a hand at the Temporal frontend can do with it,
attacked on real parts: the dev server, the worker, the web app, SMTP.

- A history holds no client address; the audit log keeps it.
- A start payload copied from a withdrawn message's history, started again under its own
  id (after it closed) or under another id, mails nothing.
- A ``message_viewed`` signal sent by hand does not make the office see "opened".
- A ``notice_bounced`` signal or a ``resend_notice`` update sent by hand (through the
  codec: an insider with the key) fails nothing and mails nothing.
- A ``withdraw`` or ``change_expiry`` update sent by hand, or copied from a history with
  the office's request in it, changes nothing: each needs a request the web app recorded
  for that very change, and a request serves one update.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from domain.errors import NOT_REQUESTED
from domain.secure_email import (
    ExpiryChange,
    NoticeBounced,
    NoticeResend,
    OfficeChange,
    SecureEmailState,
    SecureEmailStatus,
    Withdrawal,
    workflow_id_for,
)
from infra import office_requests
from infra.db.models import StaffUser
from infra.temporal.codec import EncryptionCodec
from tests.conftest import TEST_KEYS, Browser
from tests.fixtures.passcodes import another_code
from tests.fixtures.stack import Stack
from tests.fixtures.temporal import idle
from tests.fixtures.waiting import eventually
from tests.security.test_temporal_trust import audit_events, history_payloads, mail_count
from workflows.secure_email import SecureEmailWorkflow

PATIENT = "rue@example.com"
# TEST-NET-3 (RFC 5737): an address that can only come from this test's browser.
ADDRESS = "203.0.113.7"
ENDED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
}


def browser_at(stack: Stack, address: str) -> httpx.AsyncClient:
    """A patient's browser connecting from ``address``."""
    return Browser(
        transport=httpx.ASGITransport(app=stack.app, client=(address, 50000)),
        base_url="http://portal.test",
    )


async def sent(stack: Stack) -> tuple[str, str]:
    """A secure email to the patient, its notice delivered; its id and link path."""
    patient_id = await stack.add_patient("Rue Park", PATIENT)
    secure_email_id = await stack.send_secure(patient_id, "Your X-rays", "They look fine.")
    await stack.wait_for_status(secure_email_id, "sent")
    return secure_email_id, await stack.notice_link(PATIENT)


async def temporal(stack: Stack) -> Client:
    client: Client = await stack.app.state.app_state.temporal()
    return client


async def frontend_only(stack: Stack) -> Client:
    """What anyone who reaches port 7233 has: a client without the codec."""
    own = await temporal(stack)
    return await Client.connect(
        own.service_client.config.target_host,
        namespace=own.namespace,
        data_converter=pydantic_data_converter,
    )


async def event_types(client: Client, workflow_id: str, run_id: str) -> list[int]:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return [event.event_type async for event in handle.fetch_history_events()]


async def closed(client: Client, workflow_id: str, run_id: str) -> list[int]:
    """The run's event types once it has closed."""

    async def ended() -> list[int] | None:
        kinds = await event_types(client, workflow_id, run_id)
        return kinds if ENDED & set(kinds) else None

    return await eventually(ended, timeout=30, what=f"{workflow_id} closed")


async def test_history_holds_no_client_address(stack: Stack) -> None:
    secure_email_id, link = await sent(stack)
    async with browser_at(stack, ADDRESS) as patient:
        asked = await patient.post(f"{link}/passcode")
        assert asked.status_code == 303, asked.text
        code = await stack.passcode(PATIENT, 2)
        wrong = another_code(code)
        assert (await patient.post(f"{link}/verify", data={"passcode": wrong})).status_code == 422
        assert (await patient.post(f"{link}/verify", data={"passcode": code})).status_code == 303
        replied = await patient.post(
            f"/portal/messages/{secure_email_id}/reply",
            data={"subject": "RE: X-rays", "body": "Thanks"},
        )
        assert replied.status_code == 303, replied.text
    client = await temporal(stack)
    stored = await history_payloads(client, secure_email_id)
    encrypted = [p for p in stored if p.metadata.get("encoding") == b"binary/encrypted"]
    decoded = await EncryptionCodec(TEST_KEYS).decode(encrypted)
    assert len(decoded) > 5, "the history's payloads were decoded"
    for payload in [*decoded, *(p for p in stored if p not in encrypted)]:
        assert ADDRESS.encode() not in payload.data, payload.data[:120]
        assert b"client_address" not in payload.data, payload.data[:120]
    # The audit log keeps where each of the patient's steps came from, one reply event.
    practice_id = stack.office.practice_id
    for action in ("portal.passcode_issued", "portal.verify_failed", "portal.verify_ok"):
        events = await audit_events(stack, practice_id, action)
        assert [event.client_address for event in events] == [ADDRESS], action
    (reply,) = await audit_events(stack, practice_id, "portal.reply")
    assert (reply.client_address, reply.secure_email_id) == (ADDRESS, secure_email_id)
    assert reply.actor_type == "patient" and reply.detail == "0 attachment(s)"


async def _start_copy(
    client: Client, workflow_id: str, copied: WorkflowType, task_queue: str, payloads: list[Payload]
) -> str:
    """Starts the copied encrypted input under ``workflow_id``, as the CLI would; the run id."""
    started = await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_id=workflow_id,
            workflow_type=copied,
            task_queue=TaskQueue(name=task_queue),
            input=Payloads(payloads=payloads),
            request_id=str(uuid.uuid4()),
            identity="attacker",
        )
    )
    return started.run_id


@pytest.mark.parametrize("where", ["same id", "another id"])
async def test_copied_start_of_a_withdrawn_message_mails_nothing(stack: Stack, where: str) -> None:
    secure_email_id, _ = await sent(stack)
    withdrawn = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    own = await temporal(stack)
    original = own.get_workflow_handle(workflow_id_for(secure_email_id))
    await original.result()  # withdrawn: its run ends
    first = await anext(aiter(original.fetch_history_events()))
    attributes = first.workflow_execution_started_event_attributes
    assert await mail_count(stack, PATIENT) == 1

    attacker = await frontend_only(stack)
    workflow_id = workflow_id_for(secure_email_id if where == "same id" else str(uuid.uuid4()))
    run_id = await _start_copy(
        attacker,
        workflow_id,
        attributes.workflow_type,
        attributes.task_queue.name,
        list(attributes.input.payloads),
    )
    kinds = await closed(attacker, workflow_id, run_id)
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED in kinds
    if where == "another id":
        # Refused for what it is, a payload bound to another workflow: before any step.
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    assert await mail_count(stack, PATIENT) == 1, "the notice was mailed again"
    response = await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")
    assert response.json()["status"] == "withdrawn"
    assert (await stack.office.api.get("/api/v1/alerts")).json()["items"] == []


async def _settled(handle: WorkflowHandle[Any, Any], after: int) -> None:
    """Waits until the workflow has handled what was sent after event ``after``: a workflow
    task completed since, and nothing in flight."""

    async def handled() -> bool:
        events = [event async for event in handle.fetch_history_events()]
        return any(
            event.event_id > after
            and event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            for event in events
        )

    await eventually(handled, what="the signal handled")
    await idle(handle)


async def _last_event_id(handle: WorkflowHandle[Any, Any]) -> int:
    return max([event.event_id async for event in handle.fetch_history_events()])


async def test_hand_sent_message_viewed_does_not_open_it(stack: Stack) -> None:
    secure_email_id, _ = await sent(stack)
    attacker = await frontend_only(stack)
    handle = attacker.get_workflow_handle(workflow_id_for(secure_email_id))
    before = await _last_event_id(handle)
    # No argument: no payload, so no codec is needed to send it.
    await attacker.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace=attacker.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id),
            signal_name="message_viewed",
            identity="attacker",
            request_id=str(uuid.uuid4()),
        )
    )
    await _settled((await temporal(stack)).get_workflow_handle(handle.id), before)
    shown = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    assert (shown["status"], shown["opened_at"]) == ("sent", None)
    state = (
        await (await temporal(stack))
        .get_workflow_handle_for(SecureEmailWorkflow.run, handle.id)
        .query(SecureEmailWorkflow.state)
    )
    assert state.opened_at is None


async def test_hand_sent_bounce_fails_nothing(stack: Stack) -> None:
    secure_email_id, _ = await sent(stack)
    handle = (await temporal(stack)).get_workflow_handle_for(
        SecureEmailWorkflow.run, workflow_id_for(secure_email_id)
    )
    before = await _last_event_id(handle)
    await handle.signal(SecureEmailWorkflow.notice_bounced, NoticeBounced(at=datetime.now(UTC)))
    await _settled(handle, before)
    shown = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    assert shown["status"] == "sent"
    assert "bounced" not in [event["kind"] for event in shown["events"]]
    assert (await stack.office.api.get("/api/v1/alerts")).json()["items"] == []


async def test_hand_sent_resend_mails_nothing(stack: Stack) -> None:
    secure_email_id, _ = await sent(stack)
    handle = (await temporal(stack)).get_workflow_handle_for(
        SecureEmailWorkflow.run, workflow_id_for(secure_email_id)
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            SecureEmailWorkflow.resend_notice, NoticeResend(staff_id=str(uuid.uuid4()))
        )
    await idle(handle)
    assert await mail_count(stack, PATIENT) == 1, "the notice was mailed again"
    shown = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    assert "notice_resent" not in [event["kind"] for event in shown["events"]]
    # The office's own resend still goes, once.
    resent = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/resend-notice")
    assert resent.status_code == 202, resent.text
    await stack.mail_to(PATIENT, 2)
    await idle(handle)
    assert await mail_count(stack, PATIENT) == 2


# The office's changes: withdraw, change expiry


def _workflow(
    client: Client, secure_email_id: str
) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    return client.get_workflow_handle_for(SecureEmailWorkflow.run, workflow_id_for(secure_email_id))


async def _shown(stack: Stack, secure_email_id: str) -> dict[str, Any]:
    response = await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


async def _staff_id(stack: Stack) -> str:
    """The office's staff id, as any history of its changes shows it."""
    async with stack.app.state.app_state.sessions() as db:
        found = select(StaffUser.id).where(StaffUser.email == stack.office.email)
        staff_id = await db.scalar(found)
    assert staff_id is not None
    return str(staff_id)


def _not_requested(refused: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> None:
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == NOT_REQUESTED, cause


@pytest.mark.parametrize("made_up", [False, True], ids=["no request", "made-up request"])
async def test_hand_sent_withdraw_withdraws_nothing(stack: Stack, made_up: bool) -> None:
    secure_email_id, _ = await sent(stack)
    handle = _workflow(await temporal(stack), secure_email_id)
    forged = Withdrawal(
        staff_id=await _staff_id(stack),
        request_id=str(uuid.uuid4()) if made_up else None,
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(SecureEmailWorkflow.withdraw, forged)
    # The refusal is the workflow's answer: whatever it did is done by now.
    assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENT
    await idle(handle)
    assert (await _shown(stack, secure_email_id))["status"] == "sent"
    # The office's own withdrawal still works.
    withdrawn = await stack.office.api.post(f"/api/v1/secure-emails/{secure_email_id}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"


@pytest.mark.parametrize("made_up", [False, True], ids=["no request", "made-up request"])
async def test_hand_sent_change_expiry_moves_nothing(stack: Stack, made_up: bool) -> None:
    secure_email_id, _ = await sent(stack)
    handle = _workflow(await temporal(stack), secure_email_id)
    before = (await _shown(stack, secure_email_id))["expires_at"]
    forged = ExpiryChange(
        staff_id=await _staff_id(stack),
        expires_at=(datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0),
        request_id=str(uuid.uuid4()) if made_up else None,
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(SecureEmailWorkflow.change_expiry, forged)
    state = await handle.query(SecureEmailWorkflow.state)
    assert state.expires_at == datetime.fromisoformat(before)
    await idle(handle)
    shown = await _shown(stack, secure_email_id)
    assert shown["expires_at"] == before
    assert "expiry_changed" not in [event["kind"] for event in shown["events"]]


async def test_request_for_one_expiry_moves_it_to_no_other(stack: Stack) -> None:
    secure_email_id, _ = await sent(stack)
    handle = _workflow(await temporal(stack), secure_email_id)
    before = (await _shown(stack, secure_email_id))["expires_at"]
    staff_id = await _staff_id(stack)
    asked = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    async with stack.app.state.app_state.sessions() as db:
        request_id = office_requests.record(
            db, secure_email_id, OfficeChange.CHANGE_EXPIRY, staff_id, datetime.now(UTC), asked
        )
        await db.commit()
    other = ExpiryChange(
        staff_id=staff_id, expires_at=asked - timedelta(days=19), request_id=request_id
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.change_expiry, other)
    _not_requested(refused)
    assert (await handle.query(SecureEmailWorkflow.state)).expires_at == datetime.fromisoformat(
        before
    )
    # A withdrawal cannot use it either.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            SecureEmailWorkflow.withdraw, Withdrawal(staff_id=staff_id, request_id=request_id)
        )
    _not_requested(refused)
    await idle(handle)
    shown = await _shown(stack, secure_email_id)
    assert (shown["status"], shown["expires_at"]) == ("sent", before)
    # The change it was recorded for is the one it allows.
    moved = await handle.execute_update(
        SecureEmailWorkflow.change_expiry, other.model_copy(update={"expires_at": asked})
    )
    assert moved.expires_at == asked


async def test_copied_expiry_change_moves_it_once(stack: Stack) -> None:
    secure_email_id, _ = await sent(stack)
    url = f"/api/v1/secure-emails/{secure_email_id}"
    first = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    assert (await stack.office.api.patch(url, json={"expires_at": first.isoformat()})).is_success
    own = await temporal(stack)
    handle = _workflow(own, secure_email_id)
    # The office's update as its history holds it, decoded through the codec.
    (payloads,) = [
        event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    (copied,) = await own.data_converter.decode(list(payloads.payloads), [ExpiryChange])
    assert isinstance(copied, ExpiryChange) and copied.expires_at == first
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    assert (await stack.office.api.patch(url, json={"expires_at": later.isoformat()})).is_success

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.change_expiry, copied)
    _not_requested(refused)
    assert (await handle.query(SecureEmailWorkflow.state)).expires_at == later
    await idle(handle)
    shown = await _shown(stack, secure_email_id)
    assert datetime.fromisoformat(shown["expires_at"]) == later
    assert [event["kind"] for event in shown["events"]].count("expiry_changed") == 2
