"""The fewest round trips: what a lifecycle asks of the Temporal server.

The read model is written by local activities inside workflow tasks that happen anyway;
Verify answers before "opened" is written; a reply's alert and chart filing are one
activity. Secure emails started before this keep their recorded path (test_replay.py).
"""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType

from domain.secure_email import ReplySubmitted, VerifyOutcome
from tests.fixtures.waiting import eventually
from tests.workflows.conftest import Lifecycle
from tests.workflows.steps import passcode_mailed
from workflows.secure_email import SecureEmailWorkflow


async def test_verify_answers_before_opened_is_written(lifecycle: Lifecycle) -> None:
    handle, code = await passcode_mailed(lifecycle)
    slow_database = asyncio.Event()
    lifecycle.status_log.held["opened"] = slow_database

    # Without the patch this waits for the database: here it would never answer.
    verified = await asyncio.wait_for(
        handle.execute_update(SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, code)),
        timeout=10,
    )

    assert verified.outcome == VerifyOutcome.OK
    assert "opened" not in lifecycle.status_log.statuses()
    slow_database.set()

    async def opened() -> bool:
        return "opened" in lifecycle.status_log.statuses()

    await eventually(opened, timeout=10, what="'opened' in the read model")


async def test_lifecycle_schedules_only_mail_and_filing_activities(lifecycle: Lifecycle) -> None:
    """Notice, passcode, Verify, Reply All: the server schedules three activities (the
    two mails and the filing); every read-model write is a local activity's marker."""
    handle, code = await passcode_mailed(lifecycle)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, code)
    )
    await handle.execute_update(SecureEmailWorkflow.reply, ReplySubmitted(reply_id="reply-1"))

    async def filed() -> bool:
        return lifecycle.status_log.alerts == ["reply-1"] and lifecycle.status_log.filed == [
            "reply-1"
        ]

    await eventually(filed, timeout=10, what="the reply alerted and filed")
    history = await handle.fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["send_notice", "send_passcode", "file_reply"]
    assert lifecycle.status_log.statuses() == ["sent", "opened", "replied"]
