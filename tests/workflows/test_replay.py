"""Replay guards: today's workflow code must replay histories recorded by earlier code.

``tests/workflows/histories/`` holds histories of complete lifecycles. When a change to
``SecureEmailWorkflow`` makes one fail to replay, running workflows would break on
deploy: use ``workflow.patched`` instead of changing the recorded path. To record the
current code's history (after such a change, as a new file), run
``RECORD_HISTORY=1 pytest tests/workflows/test_replay.py``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.secure_email import PasscodeAttempt, PasscodeRequest, ReplySubmitted
from infra.temporal.codec import data_converter
from tests.conftest import TEST_KEY_RING
from tests.workflows.conftest import Lifecycle
from workflows.secure_email import SecureEmailWorkflow

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    # The encrypted converter: it must open fresh histories and pass plain recorded ones.
    return Replayer(workflows=[SecureEmailWorkflow], data_converter=data_converter(TEST_KEY_RING))


async def full_lifecycle(lifecycle: Lifecycle) -> WorkflowHistory:
    """Notice, two passcodes (a wrong try, a timed-out code), open, a reply, expiry."""
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    first = await lifecycle.latest_passcode(2)
    wrong = f"{(int(first) + 1) % 10**8:08d}"
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, PasscodeAttempt(passcode=wrong)
    )
    await lifecycle.env.sleep(timedelta(minutes=16))
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    second = await lifecycle.latest_passcode(3)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, PasscodeAttempt(passcode=second)
    )
    await handle.signal(SecureEmailWorkflow.message_viewed)
    await handle.execute_update(
        SecureEmailWorkflow.reply,
        ReplySubmitted(reply_id="reply-1", subject="RE: results", body="Thanks"),
    )
    await lifecycle.env.sleep(timedelta(days=7))
    await handle.result()
    return await handle.fetch_history()


def recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", recorded(), ids=lambda path: path.stem)
async def test_replay_recorded_history(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer().replay_workflow(history)


async def test_replay_fresh_full_lifecycle(lifecycle: Lifecycle) -> None:
    history = await full_lifecycle(lifecycle)
    await replayer().replay_workflow(history)
    if os.environ.get("RECORD_HISTORY"):
        HISTORIES.mkdir(exist_ok=True)
        name = f"lifecycle-{len(recorded()) + 1:03d}.json"
        (HISTORIES / name).write_text(history.to_json())


def test_histories_recorded() -> None:
    assert recorded(), "no recorded histories: run with RECORD_HISTORY=1 once"
