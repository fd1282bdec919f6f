"""Reply All as an update: recorded, then alerted and filed once; refused after expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.secure_email import (
    PasscodeAttempt,
    PasscodeRequest,
    ReplyAttachment,
    ReplySubmitted,
    SecureEmailState,
    SecureEmailStatus,
)
from tests.workflows.conftest import Lifecycle
from workflows.secure_email import SecureEmailWorkflow


def a_reply(reply_id: str, body: str = "Thank you, see you Tuesday.") -> ReplySubmitted:
    return ReplySubmitted(
        reply_id=reply_id,
        subject="RE: Treatment plan",
        body=body,
        attachments=[
            ReplyAttachment(
                attachment_id=f"{reply_id}-file",
                object_key=f"secure-emails/x/replies/{reply_id}/file",
                filename="insurance.pdf",
                size=9,
                content_type="application/pdf",
                sha256="0" * 64,
            )
        ],
    )


async def opened(lifecycle: Lifecycle) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    passcode = await lifecycle.latest_passcode(2)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, PasscodeAttempt(passcode=passcode)
    )
    return handle


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_reply_recorded_alerted_and_filed_once(lifecycle: Lifecycle) -> None:
    handle = await opened(lifecycle)
    accepted = await handle.execute_update(SecureEmailWorkflow.reply, a_reply("r1"))
    assert accepted.reply_id == "r1"
    assert [r.reply.reply_id for r in lifecycle.status_log.replies] == ["r1"]
    second = await handle.execute_update(SecureEmailWorkflow.reply, a_reply("r2", "And one more"))
    assert second.reply_id == "r2"
    log = lifecycle.status_log
    await until(lambda: log.alerts == ["r1", "r2"] and log.filed == ["r1", "r2"])
    state = await handle.query(SecureEmailWorkflow.state)
    assert state.status == SecureEmailStatus.REPLIED
    assert log.statuses() == ["sent", "opened", "replied"]


async def test_blank_reply_refused(lifecycle: Lifecycle) -> None:
    handle = await opened(lifecycle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.reply, a_reply("r1", body="  \n"))
    assert "needs a message" in str(refused.value.cause)
    assert lifecycle.status_log.replies == []


async def test_reply_after_expiry_refused(lifecycle: Lifecycle) -> None:
    handle = await opened(lifecycle)
    await lifecycle.env.sleep(timedelta(days=7))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    with pytest.raises(RPCError):
        await handle.execute_update(SecureEmailWorkflow.reply, a_reply("late"))
    assert lifecycle.status_log.replies == []
