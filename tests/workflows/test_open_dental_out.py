"""What a secure email puts into the patient's Open Dental, seen from its workflow: a
commlog when sent, the reply's files then its commlog, all beside the lifecycle, which
neither waits for Open Dental nor fails with it; a message to anyone else sends nothing
there and records no patch marker."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory

from domain.secure_email import (
    PasscodeRequest,
    ReplySubmitted,
    SecureEmailState,
    SecureEmailStatus,
)
from tests.fixtures.waiting import eventually
from tests.workflows.conftest import Lifecycle
from tests.workflows.steps import passcode_mailed
from workflows.secure_email import OPEN_DENTAL, SecureEmailWorkflow


async def opened_and_answered(
    lifecycle: Lifecycle, *, open_dental: bool = True
) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    handle, passcode = await passcode_mailed(lifecycle, open_dental=open_dental)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    await handle.execute_update(SecureEmailWorkflow.reply, ReplySubmitted(reply_id="r1"))
    return handle


async def test_open_dental_patient_gets_commlogs_and_the_reply_files(lifecycle: Lifecycle) -> None:
    handle, passcode = await passcode_mailed(lifecycle, open_dental=True)
    log = lifecycle.status_log
    await eventually(lambda: log.commlogs == ["sent"], what="the sending's commlog")
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    await handle.execute_update(SecureEmailWorkflow.reply, ReplySubmitted(reply_id="r1"))
    # The files first, then the commlog that counts them.
    await eventually(lambda: log.commlogs == ["sent", "r1"], what="the reply's commlog")
    assert log.uploads == ["r1"] and log.filed == ["r1"]
    await lifecycle.env.sleep(timedelta(days=7))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    assert log.uploads == ["r1"] and log.commlogs == ["sent", "r1"]
    assert OPEN_DENTAL in patch_ids(await handle.fetch_history())


async def test_open_dental_refusing_everything_changes_nothing_else(lifecycle: Lifecycle) -> None:
    log = lifecycle.status_log
    log.open_dental_down = True
    handle = await opened_and_answered(lifecycle)
    await eventually(lambda: log.filed == ["r1"] and log.alerts == ["r1"])
    await lifecycle.env.sleep(timedelta(days=7))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    assert log.statuses() == ["sent", "opened", "replied", "expired"]
    assert log.uploads == [] and log.commlogs == []


async def test_reply_commlog_goes_when_its_files_did_not(lifecycle: Lifecycle) -> None:
    log = lifecycle.status_log
    log.uploads_down = True
    await opened_and_answered(lifecycle)
    await eventually(lambda: log.commlogs == ["sent", "r1"], what="the reply's commlog")
    assert log.uploads == []


async def test_lifecycle_does_not_wait_for_open_dental(lifecycle: Lifecycle) -> None:
    log = lifecycle.status_log
    log.open_dental_held = asyncio.Event()
    handle = await opened_and_answered(lifecycle)
    # Open Dental has not answered: the office is alerted, the chart filed, and the
    # patient's next request answered all the same.
    await eventually(lambda: log.filed == ["r1"] and log.alerts == ["r1"])
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    assert log.uploads == [] and log.commlogs == []
    log.open_dental_held.set()
    await eventually(lambda: log.commlogs == ["sent", "r1"], what="Open Dental's answers")
    await lifecycle.env.sleep(timedelta(days=7))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    assert log.uploads == ["r1"]


async def test_other_patients_send_nothing_to_open_dental(lifecycle: Lifecycle) -> None:
    handle = await opened_and_answered(lifecycle, open_dental=False)
    log = lifecycle.status_log
    await lifecycle.env.sleep(timedelta(days=7))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    assert log.filed == ["r1"] and log.uploads == [] and log.commlogs == []
    patches = patch_ids(await handle.fetch_history())
    assert patches and OPEN_DENTAL not in patches


def patch_ids(history: WorkflowHistory) -> list[str]:
    """The patches a run asked for, as its markers recorded them."""
    return [
        json.loads(payload.data)["id"]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_patch"
        for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads
    ]
