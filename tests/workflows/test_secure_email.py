"""``SecureEmailWorkflow`` on the time-skipping server: notice, passcodes, expiry (R5, R6, R8)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from domain.errors import BAD_REQUEST
from domain.secure_email import (
    PasscodeRequest,
    SecureEmailStatus,
    VerifyOutcome,
)
from infra.db.models import SecureEmail
from infra.security import token_hash
from tests.fixtures.passcodes import another_code
from tests.fixtures.waiting import eventually
from tests.workflows.conftest import OFFICE, PATIENT, Lifecycle
from tests.workflows.steps import passcode_mailed
from workflows.legacy.inputs import PasscodeInClear
from workflows.secure_email import SecureEmailWorkflow


async def test_deliver_notice_without_content(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    (notice,) = await lifecycle.mail(1)
    assert notice["To"] == PATIENT
    assert OFFICE in notice["From"]
    text = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"View Secure Email: http://portal.test/m/(\S+)", text)
    assert link is not None
    # The link the office's row was made for: its hash is what the portal looks up.
    async with lifecycle.directory.sessions() as db:
        row = await db.get(SecureEmail, handle.id.removeprefix("secure-email-"))
    assert row is not None and token_hash(link.group(1)) == row.link_token_hash
    assert "spam" in text
    state = await handle.query(SecureEmailWorkflow.state)
    assert state.status == SecureEmailStatus.SENT
    assert lifecycle.status_log.statuses() == ["sent"]


async def test_expire_at_exactly_seven_days(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    await lifecycle.env.sleep(timedelta(days=7) - timedelta(seconds=5))
    assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENT
    await lifecycle.env.sleep(timedelta(seconds=10))
    final = await handle.result()
    assert final.status == SecureEmailStatus.EXPIRED
    assert lifecycle.status_log.statuses() == ["sent", "expired"]
    history = await handle.fetch_history()
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    assert len(timers) == 1
    fired_after = timers[0].timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    assert timedelta(days=7) - timedelta(seconds=5) < fired_after <= timedelta(days=7)


async def test_verify_passcode_opens_message(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    issued = await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    passcode = await lifecycle.latest_passcode(2)
    result = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    assert result.outcome == VerifyOutcome.OK
    state = await handle.query(SecureEmailWorkflow.state)
    assert state.status == SecureEmailStatus.OPENED
    assert state.opened_at is not None
    assert issued.valid_until - state.opened_at <= timedelta(minutes=15)
    passcode_mail = (await lifecycle.mail(2))[-1]
    assert "valid for 15 minutes" in passcode_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Single use: the same code does not open it twice.
    again = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    assert again.outcome == VerifyOutcome.NONE_ISSUED
    # "opened" is written just after Verify answers (a 1 ms timer, then a local activity).
    await eventually(lambda: "opened" in lifecycle.status_log.statuses(), what='"opened" projected')
    assert lifecycle.status_log.statuses() == ["sent", "opened"]


@pytest.mark.parametrize(
    ("wait", "outcome"),
    [
        (timedelta(minutes=14, seconds=59), VerifyOutcome.OK),
        (timedelta(minutes=15, seconds=1), VerifyOutcome.TIMED_OUT),
    ],
)
async def test_passcode_valid_for_fifteen_minutes(
    lifecycle: Lifecycle, wait: timedelta, outcome: VerifyOutcome
) -> None:
    handle, passcode = await passcode_mailed(lifecycle)
    await lifecycle.env.sleep(wait)
    result = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    assert result.outcome == outcome


async def test_five_wrong_tries_burn_passcode(lifecycle: Lifecycle) -> None:
    handle, passcode = await passcode_mailed(lifecycle)
    wrong = another_code(passcode)
    tries_left = []
    for _ in range(5):
        result = await handle.execute_update(
            SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, wrong)
        )
        tries_left.append((result.outcome, result.tries_left))
    assert tries_left == [
        (VerifyOutcome.WRONG, 4),
        (VerifyOutcome.WRONG, 3),
        (VerifyOutcome.WRONG, 2),
        (VerifyOutcome.WRONG, 1),
        (VerifyOutcome.BURNED, 0),
    ]
    # Burned: even the right code no longer works ...
    right = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    assert right.outcome == VerifyOutcome.BURNED
    # ... until a new one is requested.
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    fresh = await lifecycle.latest_passcode(3)
    assert fresh != passcode
    result = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, fresh)
    )
    assert result.outcome == VerifyOutcome.OK


async def test_passcode_in_clear_refused_before_the_history(lifecycle: Lifecycle) -> None:
    """Only a code's checks are taken: one sent in clear (as the legacy workflow takes it)
    is refused by the validator, so it is never recorded; the right checks still work."""
    handle, passcode = await passcode_mailed(lifecycle)
    with_code = PasscodeInClear(
        passcode=passcode, checks=lifecycle.attempt(handle, passcode).checks
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.verify_passcode, with_code)
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == BAD_REQUEST
    assert passcode not in (await handle.fetch_history()).to_json()
    result = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
    )
    assert result.outcome == VerifyOutcome.OK


async def test_sixth_passcode_in_an_hour_refused(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    for _ in range(5):
        await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
        await lifecycle.env.sleep(timedelta(minutes=1))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    assert "Too many passcodes" in str(refused.value.cause)
    assert len(await lifecycle.mail(6)) == 6  # the notice and five passcodes, no more
    # An hour after the first one, the patient may ask again.
    await lifecycle.env.sleep(timedelta(minutes=56))
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    assert len(await lifecycle.mail(7)) == 7


async def test_verify_after_expiry_refused(lifecycle: Lifecycle) -> None:
    handle, passcode = await passcode_mailed(lifecycle, expiry_days=1)
    await lifecycle.env.sleep(timedelta(days=1, minutes=1))
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    # The workflow has finished: the server refuses updates to it (the portal checks the
    # expiry first and shows the warning page).
    with pytest.raises(RPCError):
        await handle.execute_update(
            SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, passcode)
        )
    with pytest.raises(RPCError):
        await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    assert len(await lifecycle.mail(2)) == 2
