"""Reply All as an update: recorded, then alerted and filed once; refused after expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from domain.attachments import StoredAttachment
from domain.secure_email import (
    MAX_REPLIES,
    MAX_REPLIES_PER_HOUR,
    CarriedState,
    ReplySubmitted,
    SecureEmailState,
    SecureEmailStatus,
)
from tests.fixtures.temporal import start_secure_email
from tests.fixtures.waiting import eventually
from tests.workflows.conftest import Lifecycle
from tests.workflows.steps import passcode_mailed
from workflows.secure_email import SecureEmailWorkflow


def a_reply(reply_id: str) -> ReplySubmitted:
    """As the portal sends it: the id of a reply it keeps, nothing the patient wrote."""
    return ReplySubmitted(reply_id=reply_id)


async def opened(lifecycle: Lifecycle) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    handle, passcode = await passcode_mailed(lifecycle)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    return handle


async def test_reply_recorded_alerted_and_filed_once(lifecycle: Lifecycle) -> None:
    handle = await opened(lifecycle)
    accepted = await handle.execute_update(SecureEmailWorkflow.reply, a_reply("r1"))
    assert accepted.reply_id == "r1"
    assert [r.reply.reply_id for r in lifecycle.status_log.replies] == ["r1"]
    second = await handle.execute_update(SecureEmailWorkflow.reply, a_reply("r2"))
    assert second.reply_id == "r2"
    log = lifecycle.status_log
    await eventually(lambda: log.alerts == ["r1", "r2"] and log.filed == ["r1", "r2"])
    state = await handle.query(SecureEmailWorkflow.state)
    assert state.status == SecureEmailStatus.REPLIED
    assert log.statuses() == ["sent", "opened", "replied"]


async def test_reply_with_its_content_refused_before_the_history(lifecycle: Lifecycle) -> None:
    """What the patient wrote stays in the database: a reply that carries it is refused
    by the validator, so it is never recorded in the history."""
    handle = await opened(lifecycle)
    stored = StoredAttachment(
        attachment_id="r1-file",
        object_key="secure-emails/x/replies/r1/file",
        filename="insurance.pdf",
        size=9,
        content_type="application/pdf",
        sha256="0" * 64,
    )
    # As earlier portals sent a reply: its words and files beside the id.
    with_content = ReplySubmitted.model_validate(
        {
            "reply_id": "r1",
            "subject": "RE: Treatment plan",
            "body": "My insurance number is 123",
            "attachments": [stored.model_dump(mode="json")],
        }
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(SecureEmailWorkflow.reply, with_content)
    assert lifecycle.status_log.replies == []
    history = (await handle.fetch_history()).to_json()
    assert "insurance" not in history.lower()


async def test_replies_capped_per_hour_in_words(lifecycle: Lifecycle) -> None:
    handle = await opened(lifecycle)
    for i in range(MAX_REPLIES_PER_HOUR):
        await handle.execute_update(SecureEmailWorkflow.reply, a_reply(f"r{i}"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.reply, a_reply("one-too-many"))
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message.startswith(
        f"You have sent {MAX_REPLIES_PER_HOUR} replies to this message in the last hour."
    )
    assert len(lifecycle.status_log.replies) == MAX_REPLIES_PER_HOUR
    await lifecycle.env.sleep(timedelta(hours=1))
    await handle.execute_update(SecureEmailWorkflow.reply, a_reply("an-hour-later"))
    assert lifecycle.status_log.replies[-1].reply.reply_id == "an-hour-later"


async def test_reply_after_expiry_refused(lifecycle: Lifecycle) -> None:
    handle = await opened(lifecycle)
    await lifecycle.env.sleep(timedelta(days=7))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    with pytest.raises(RPCError):
        await handle.execute_update(SecureEmailWorkflow.reply, a_reply("late"))
    assert lifecycle.status_log.replies == []


async def test_conversation_capped_at_its_total_in_words(lifecycle: Lifecycle) -> None:
    """The total cap travels with the state a run hands on when it continues as new."""
    opened = await lifecycle.start()
    await lifecycle.mail(1)
    state = await opened.query(SecureEmailWorkflow.state)
    # The next run of a conversation that has reached its total.
    carried = await start_secure_email(
        lifecycle.client,
        lifecycle.task_queue,
        secure_email_id=opened.id.removeprefix("secure-email-"),
        practice_id=lifecycle.directory.practice_id,
        patient_id=lifecycle.directory.patient_id,
        sent_at=state.sent_at,
        lifetime=state.expires_at - state.sent_at,
        portal_key_id=lifecycle.directory.portal_keys.current_id,
        carried=CarriedState(status=SecureEmailStatus.REPLIED, replies=MAX_REPLIES),
        workflow_id=f"{opened.id}-next-run",
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await carried.execute_update(SecureEmailWorkflow.reply, a_reply("one-too-many"))
    assert isinstance(refused.value.cause, ApplicationError)
    assert f"already has {MAX_REPLIES} replies" in refused.value.cause.message
    assert "call the office" in refused.value.cause.message
    assert lifecycle.status_log.replies == []
