"""A conversation longer than one history: the workflow continues as new when Temporal
suggests it, and every reply keeps its record, its alert and its chart filing, once.

Temporal suggests continuing as new only past thousands of events; this dev server is
told to suggest it after a few dozen, so a handful of replies crosses the point
several times.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from domain.secure_email import PasscodeRequest, ReplySubmitted, SecureEmailStatus, VerifyOutcome
from infra.mail.smtp import SmtpTransport
from infra.temporal.codec import data_converter
from infra.temporal.search_attributes import cli_flags
from tests.conftest import TEST_KEYS
from tests.fixtures.waiting import eventually
from tests.workflows.conftest import Lifecycle, running_lifecycle
from tests.workflows.steps import passcode_mailed
from workers.smtp_catcher import serve
from workflows.secure_email import SecureEmailWorkflow

SUGGEST_AFTER_EVENTS = 30
REPLIES = 8


@pytest.fixture
async def short_history_lifecycle(tmp_path: Path) -> AsyncIterator[Lifecycle]:
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(TEST_KEYS),
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=[
            *cli_flags(),
            "--log-level",
            "error",
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
        ui=False,
    )
    maildir = tmp_path / "mail"
    smtp = await serve("127.0.0.1", 0, maildir)
    transport = SmtpTransport("127.0.0.1", smtp.sockets[0].getsockname()[1], local_hostname="t")
    try:
        async with running_lifecycle(env, transport, maildir) as lifecycle:
            yield lifecycle
    finally:
        smtp.close()
        await smtp.wait_closed()
        await env.shutdown()


async def test_conversation_past_continue_as_new_keeps_every_reply_once(
    short_history_lifecycle: Lifecycle,
) -> None:
    lifecycle = short_history_lifecycle
    handle, code = await passcode_mailed(lifecycle)
    verified = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, code)
    )
    assert verified.outcome == VerifyOutcome.OK
    first_run = (await handle.describe()).run_id

    reply_ids = [f"reply-{i}" for i in range(REPLIES)]
    for reply_id in reply_ids:
        # The workflow id, not a run: updates reach whichever run is current.
        await handle.execute_update(SecureEmailWorkflow.reply, ReplySubmitted(reply_id=reply_id))

    log = lifecycle.status_log
    await eventually(lambda: log.filed == reply_ids and log.alerts == reply_ids, timeout=10)
    assert [r.reply.reply_id for r in log.replies] == reply_ids
    assert log.alerts == reply_ids
    assert log.filed == reply_ids

    # The stand-in activities log before the workflow task that continues runs: wait.
    latest = lifecycle.client.get_workflow_handle(handle.id)

    async def continued() -> bool:
        return (await latest.describe()).run_id != first_run

    await eventually(continued, timeout=10, what="continued as new")
    first = lifecycle.client.get_workflow_handle(handle.id, run_id=first_run)
    kinds = [event.event_type async for event in first.fetch_history_events()]
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW

    # The state went with it: opened, replied, and the passcode counter (a new passcode
    # is the second, so it differs from the first and the used one no longer verifies).
    state = await latest.query(SecureEmailWorkflow.state)
    assert state.status == SecureEmailStatus.REPLIED
    assert state.opened_at is not None and state.passcodes_issued == 1
    assert log.statuses() == ["sent", "opened", "replied"]
    again = await latest.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(latest, code)
    )
    assert again.outcome == VerifyOutcome.NONE_ISSUED
    await latest.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    assert await lifecycle.latest_passcode(3) != code
