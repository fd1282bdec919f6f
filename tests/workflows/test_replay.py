"""Replay guards: today's workflow code must replay histories recorded by earlier code.

``tests/workflows/histories/`` holds histories of complete lifecycles: 001 and 002 of
version 1 (``LegacySecureEmailWorkflow``, still running messages sent before ids-only
histories), 003 on of ``SecureEmailWorkflow``. When a change makes one fail to replay,
running workflows would break on deploy: use ``workflow.patched`` instead of changing
the recorded path. To record the current code's history (after such a change, as a new
file), run ``RECORD_HISTORY=1 pytest tests/workflows/test_replay.py``.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.secure_email import (
    PasscodeRequest,
    ReplySubmitted,
    SecureEmailStatus,
    VerifyOutcome,
)
from infra.temporal.codec import ENCODING, EncryptionCodec, data_converter
from tests.conftest import TEST_KEYS
from tests.fixtures.passcodes import another_code
from tests.workflows.conftest import Lifecycle
from tests.workflows.steps import passcode_mailed
from workflows.legacy import LEGACY_WORKFLOW_TYPE
from workflows.legacy.inputs import PasscodeInClear
from workflows.legacy.secure_email_v1 import LegacySecureEmailWorkflow
from workflows.secure_email import SecureEmailWorkflow

HISTORIES = Path(__file__).parent / "histories"


def replayer(history: WorkflowHistory | None = None) -> Replayer:
    # The encrypted converter refuses plain payloads (R12). History 001 was recorded
    # before encryption existed (no deployment ran then): it guards the workflow code,
    # so it replays through the plain converter.
    encrypted = history is None or b"YmluYXJ5L2VuY3J5cHRlZA" in history.to_json().encode()
    return Replayer(
        workflows=[SecureEmailWorkflow, LegacySecureEmailWorkflow],
        data_converter=data_converter(TEST_KEYS) if encrypted else pydantic_data_converter,
    )


async def full_lifecycle(lifecycle: Lifecycle) -> WorkflowHistory:
    """Notice, two passcodes (a wrong try, a timed-out code), open, a reply, the expiry
    moved by the office, expiry; to an Open Dental patient (its commlogs and the reply's
    files beside the lifecycle)."""
    handle, first = await passcode_mailed(lifecycle, open_dental=True)
    wrong = another_code(first)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, wrong)
    )
    await lifecycle.env.sleep(timedelta(minutes=16))
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    second = await lifecycle.latest_passcode(3)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, second)
    )
    await handle.signal(SecureEmailWorkflow.message_viewed)
    await handle.execute_update(SecureEmailWorkflow.reply, ReplySubmitted(reply_id="reply-1"))
    sent_at = (await handle.query(SecureEmailWorkflow.state)).sent_at
    await handle.execute_update(
        SecureEmailWorkflow.change_expiry,
        await lifecycle.expiry_change(handle, sent_at + timedelta(days=5)),
    )
    await lifecycle.env.sleep(timedelta(days=7))
    await handle.result()
    return await handle.fetch_history()


def recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


async def recorded_history(path: Path) -> WorkflowHistory:
    """The history under the workflow id it ran under: a start since
    ``start-bound-to-workflow-id`` names it in its (encrypted) input, and refuses to run
    under any other."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    first = history.events[0]
    if first.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        return history
    payloads = list(first.workflow_execution_started_event_attributes.input.payloads)
    if not payloads or payloads[0].metadata.get("encoding") != ENCODING:
        return history
    (plain,) = await EncryptionCodec(TEST_KEYS).decode(payloads[:1])
    workflow_id = json.loads(plain.data).get("workflow_id")
    return WorkflowHistory(workflow_id, history.events) if workflow_id else history


@pytest.mark.parametrize("path", recorded(), ids=lambda path: path.stem)
async def test_replay_recorded_history(path: Path) -> None:
    history = await recorded_history(path)
    await replayer(history).replay_workflow(history)


async def test_replay_fresh_full_lifecycle(lifecycle: Lifecycle) -> None:
    history = await full_lifecycle(lifecycle)
    await replayer().replay_workflow(history)
    if os.environ.get("RECORD_HISTORY"):
        HISTORIES.mkdir(exist_ok=True)
        name = f"lifecycle-{len(recorded()) + 1:03d}.json"
        (HISTORIES / name).write_text(history.to_json())


async def test_version_1_message_keeps_working_on_the_new_worker(lifecycle: Lifecycle) -> None:
    """A message sent before this release: passcode, Verify (the portal sends it the code
    in clear, as its secret-based passcodes need), a reply by id, expiry; then replay."""
    handle = await lifecycle.start_v1()
    await lifecycle.mail(1)
    await handle.execute_update(LegacySecureEmailWorkflow.request_passcode, PasscodeRequest())
    code = await lifecycle.latest_passcode(2)
    verified = await handle.execute_update(
        LegacySecureEmailWorkflow.verify_passcode, PasscodeInClear(passcode=code)
    )
    assert verified.outcome == VerifyOutcome.OK
    await handle.execute_update(LegacySecureEmailWorkflow.reply, ReplySubmitted(reply_id="reply-1"))
    await lifecycle.env.sleep(timedelta(days=7))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    assert lifecycle.status_log.statuses() == ["sent", "opened", "replied", "expired"]
    history = await handle.fetch_history()
    await replayer().replay_workflow(history)


def test_histories_of_both_versions_recorded() -> None:
    types = {
        WorkflowHistory.from_json(path.stem, path.read_text())
        .events[0]
        .workflow_execution_started_event_attributes.workflow_type.name
        for path in recorded()
    }
    assert types == {LEGACY_WORKFLOW_TYPE, "SecureEmail"}, "run with RECORD_HISTORY=1 once"
