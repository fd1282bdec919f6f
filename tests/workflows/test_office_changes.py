"""The office's changes to a sent secure email, on the time-skipping server:
reminders, expiry moved, withdrawal, the notice sent again, a bounce."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.errors import (
    BAD_EXPIRY,
    BAD_REQUEST,
    NOT_DUE,
    NOT_REQUESTED,
    NOT_RESENDABLE,
    TOO_MANY_RESENDS,
    WITHDRAWN,
)
from domain.secure_email import (
    EventKind,
    ExpiryChange,
    NoticeBounced,
    NoticeResend,
    PasscodeRequest,
    SecureEmailStatus,
    VerifyOutcome,
    Withdrawal,
)
from infra import timeline
from infra.mail.message import MailMessage
from infra.mail.smtp import SmtpTransport
from tests.fixtures.waiting import eventually
from tests.workflows.conftest import Lifecycle, running_lifecycle
from tests.workflows.steps import passcode_mailed
from workers.smtp_catcher import serve
from workflows.secure_email import SecureEmailWorkflow

HOUR = timedelta(hours=1)


def subject(message: EmailMessage) -> str:
    return str(message["Subject"])


def link_in(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"View Secure Email: (\S+)", text)
    assert found is not None
    return found.group(1)


def refusal(error: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> ApplicationError:
    cause = error.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def timeline_of(lifecycle: Lifecycle, handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The lines the activities wrote to the real database (the mail activities run for
    real here; the read model's own lines are the stand-in's)."""
    async with lifecycle.directory.sessions() as db:
        events = await timeline.of(db, handle.id.removeprefix("secure-email-"))
    return [event.kind for event in events]


def fire_timeouts(history: Any) -> list[timedelta]:
    return [
        event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for event in history.events
        if event.HasField("timer_started_event_attributes")
    ]


# Reminders


async def test_reminder_goes_at_48_hours_exactly_to_an_unopened_message(
    lifecycle: Lifecycle,
) -> None:
    handle = await lifecycle.start(reminder_after=48 * HOUR)
    (notice,) = await lifecycle.mail(1)
    await lifecycle.env.sleep(48 * HOUR - timedelta(seconds=5))
    assert not (await handle.query(SecureEmailWorkflow.state)).reminder_sent
    await lifecycle.env.sleep(timedelta(seconds=10))
    reminder = (await lifecycle.mail(2))[-1]
    assert subject(reminder) == "Reminder: Secure email from Smile Dental"
    assert "have not opened yet" in reminder.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert link_in(reminder) == link_in(notice)  # the same link
    assert (await handle.query(SecureEmailWorkflow.state)).reminder_sent
    # Counted from sending: the timer started once the notice had gone.
    first_timer = fire_timeouts(await handle.fetch_history())[0]
    assert 48 * HOUR - timedelta(seconds=5) < first_timer <= 48 * HOUR
    assert EventKind.REMINDER_SENT in await timeline_of(lifecycle, handle)
    # One reminder only: the message then expires on its own timer.
    assert (await handle.result()).status == SecureEmailStatus.EXPIRED
    assert len(await lifecycle.mail(2)) == 2


async def test_no_reminder_once_the_patient_opened_it(lifecycle: Lifecycle) -> None:
    handle, code = await passcode_mailed(lifecycle, reminder_after=48 * HOUR)
    opened = await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, code)
    )
    assert opened.outcome == VerifyOutcome.OK
    final = await handle.result()  # the whole seven days pass
    assert final.status == SecureEmailStatus.EXPIRED
    assert not final.reminder_sent
    # No timer was left at the reminder time once it was opened; only the expiry's.
    history = await handle.fetch_history()
    notices = [
        event
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == "send_notice"
    ]
    assert len(notices) == 1  # the notice, no reminder
    assert EventKind.REMINDER_SENT not in await timeline_of(lifecycle, handle)


# Expiry


async def test_expiry_moved_twice_the_timer_follows(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    sent_at = (await handle.query(SecureEmailWorkflow.state)).sent_at
    later = sent_at + timedelta(days=10)
    moved = await handle.execute_update(
        SecureEmailWorkflow.change_expiry, await lifecycle.expiry_change(handle, later)
    )
    assert moved.expires_at == later
    sooner = sent_at + timedelta(days=3)
    moved = await handle.execute_update(
        SecureEmailWorkflow.change_expiry, await lifecycle.expiry_change(handle, sooner)
    )
    assert moved.expires_at == sooner
    assert [change.number for change in lifecycle.status_log.expiries] == [1, 2]
    assert [change.expires_at for change in lifecycle.status_log.expiries] == [later, sooner]

    await lifecycle.env.sleep(timedelta(days=3) - timedelta(seconds=30))
    assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENT
    await lifecycle.env.sleep(timedelta(minutes=1))
    final = await handle.result()
    assert final.status == SecureEmailStatus.EXPIRED
    assert final.expires_at == sooner


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(minutes=30), "at least one hour from now"),
        (-timedelta(days=1), "at least one hour from now"),
        (timedelta(days=91), "within 90 days of sending"),
    ],
)
async def test_expiry_outside_the_rules_is_refused_and_not_applied(
    lifecycle: Lifecycle, offset: timedelta, words: str
) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    before = await handle.query(SecureEmailWorkflow.state)
    now = await lifecycle.env.get_current_time()
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            SecureEmailWorkflow.change_expiry, await lifecycle.expiry_change(handle, now + offset)
        )
    assert refusal(refused).type == BAD_EXPIRY
    assert words in refusal(refused).message
    assert (await handle.query(SecureEmailWorkflow.state)).expires_at == before.expires_at
    assert lifecycle.status_log.expiries == []


async def test_expiry_moves_only_to_the_time_the_office_asked_for_once(
    lifecycle: Lifecycle,
) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    before = await handle.query(SecureEmailWorkflow.state)
    asked = before.sent_at + timedelta(days=10)
    change = await lifecycle.expiry_change(handle, asked)
    staff_id = lifecycle.directory.staff_id
    for forged, refused_as in [
        (ExpiryChange(staff_id=staff_id, expires_at=asked), BAD_REQUEST),
        (ExpiryChange(staff_id=staff_id, expires_at=asked, request_id="never"), NOT_REQUESTED),
        (change.model_copy(update={"expires_at": asked + HOUR}), NOT_REQUESTED),
        (change.model_copy(update={"staff_id": "another"}), NOT_REQUESTED),
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(SecureEmailWorkflow.change_expiry, forged)
        assert refusal(refused).type == refused_as, forged
    # A withdrawal cannot use an expiry's request.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            SecureEmailWorkflow.withdraw,
            Withdrawal(staff_id=staff_id, request_id=change.request_id),
        )
    assert refusal(refused).type == NOT_REQUESTED
    state = await handle.query(SecureEmailWorkflow.state)
    assert (state.status, state.expires_at) == (SecureEmailStatus.SENT, before.expires_at)
    assert lifecycle.status_log.expiries == []

    moved = await handle.execute_update(SecureEmailWorkflow.change_expiry, change)
    assert moved.expires_at == asked
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.change_expiry, change)
    assert refusal(refused).type == NOT_REQUESTED
    assert [change.expires_at for change in lifecycle.status_log.expiries] == [asked]


async def test_withdrawal_the_office_did_not_ask_for_changes_nothing(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    staff_id = lifecycle.directory.staff_id
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.withdraw, Withdrawal(staff_id=staff_id))
    assert refusal(refused).type == BAD_REQUEST
    unrecorded = Withdrawal(staff_id=staff_id, request_id="never-recorded")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.withdraw, unrecorded)
    assert refusal(refused).type == NOT_REQUESTED
    assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.SENT
    withdrawal = await lifecycle.withdrawal(handle)
    state = await handle.execute_update(SecureEmailWorkflow.withdraw, withdrawal)
    assert state.status == SecureEmailStatus.WITHDRAWN
    assert lifecycle.status_log.statuses() == ["sent", "withdrawn"]


# Withdrawal


class GatedTransport:
    """Real SMTP, but a mail whose subject has ``word`` (a passcode's, by default) waits
    at the gate until the test opens it: a change can land while it is on its way."""

    def __init__(self, inner: SmtpTransport, word: str = "passcode") -> None:
        self._inner = inner
        self._word = word
        self.waiting = asyncio.Event()
        self.gate = asyncio.Event()

    async def send(self, message: MailMessage) -> None:
        if self._word in message.subject.casefold():
            self.waiting.set()
            await self.gate.wait()
        await self._inner.send(message)


@asynccontextmanager
async def gated_lifecycle(
    env: WorkflowEnvironment, maildir: Path, word: str
) -> AsyncIterator[tuple[Lifecycle, GatedTransport]]:
    server = await serve("127.0.0.1", 0, maildir)
    port = server.sockets[0].getsockname()[1]
    transport = GatedTransport(SmtpTransport("127.0.0.1", port, local_hostname="tests"), word)
    async with running_lifecycle(env, transport, maildir) as lifecycle:
        yield lifecycle, transport
    server.close()
    await server.wait_closed()


@pytest.fixture
async def gated(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[Lifecycle, GatedTransport]]:
    async with gated_lifecycle(time_skipping_env, tmp_path / "mail", "passcode") as found:
        yield found


async def test_withdraw_during_a_passcode_request(
    gated: tuple[Lifecycle, GatedTransport],
) -> None:
    lifecycle, transport = gated
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    requested = asyncio.create_task(
        handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    )
    await asyncio.wait_for(transport.waiting.wait(), timeout=20)

    withdrawn = await handle.execute_update(
        SecureEmailWorkflow.withdraw, await lifecycle.withdrawal(handle)
    )
    assert withdrawn.status == SecureEmailStatus.WITHDRAWN

    transport.gate.set()
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await requested
    assert refusal(refused).type == WITHDRAWN
    # It ends withdrawn, not expired, without waiting out its seven days: the code that
    # went out has nothing left to open.
    final = await handle.result()
    assert final.status == SecureEmailStatus.WITHDRAWN
    code = await lifecycle.latest_passcode(2)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(
            SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, code)
        )
    assert lifecycle.status_log.statuses() == ["sent", "withdrawn"]


async def test_withdraw_ends_it(
    lifecycle: Lifecycle,
) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    state = await handle.execute_update(
        SecureEmailWorkflow.withdraw, await lifecycle.withdrawal(handle)
    )
    assert state.status == SecureEmailStatus.WITHDRAWN
    assert (await handle.result()).status == SecureEmailStatus.WITHDRAWN
    # Withdrawn even if it came while the notice was still going: it is not "sent" after.
    assert lifecycle.status_log.statuses()[-1] == "withdrawn"


# The notice sent again


async def test_resend_notice_three_times_a_day_while_unopened(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    (notice,) = await lifecycle.mail(1)
    # The mail arrives before the workflow hears its activity finished: until then the
    # message is still "sending", and a resend is refused (as the office's page would).
    await eventually(lambda: sent(handle), what="the workflow has recorded the notice as sent")
    for left in (2, 1, 0):
        resent = await handle.execute_update(
            SecureEmailWorkflow.resend_notice, await lifecycle.resend(handle)
        )
        assert resent.resends_left == left
    mails = await lifecycle.mail(4)
    assert {link_in(mail) for mail in mails} == {link_in(notice)}
    assert len({mail["Message-ID"] for mail in mails}) == 4  # each its own mail
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            SecureEmailWorkflow.resend_notice, await lifecycle.resend(handle)
        )
    assert refusal(refused).type == TOO_MANY_RESENDS
    assert "3 times today" in refusal(refused).message
    assert (await timeline_of(lifecycle, handle)).count(EventKind.NOTICE_RESENT) == 3

    await lifecycle.env.sleep(timedelta(days=1))
    await handle.execute_update(SecureEmailWorkflow.resend_notice, await lifecycle.resend(handle))
    assert len(await lifecycle.mail(5)) == 5


async def test_resend_the_office_did_not_ask_for_mails_nothing(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.resend_notice, NoticeResend(staff_id="s"))
    assert refusal(refused).type == BAD_REQUEST
    unrecorded = NoticeResend(staff_id="s", request_id="never-recorded")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.resend_notice, unrecorded)
    assert refusal(refused).type == NOT_DUE
    # A request is claimed once: sent again with the same id, it mails nothing.
    asked = await lifecycle.resend(handle)
    assert (await handle.execute_update(SecureEmailWorkflow.resend_notice, asked)).resends_left == 2
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SecureEmailWorkflow.resend_notice, asked)
    assert refusal(refused).type == NOT_DUE
    # Only the office's request counted against the day's three.
    assert (await handle.query(SecureEmailWorkflow.state)).notices_resent == 1
    assert len(await lifecycle.mail(2)) == 2


async def test_resend_refused_while_the_notice_is_still_on_its_way(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Not "already opened": the office is told the notice is still being sent."""
    async with gated_lifecycle(time_skipping_env, tmp_path / "mail", "secure email") as found:
        lifecycle, transport = found
        handle = await lifecycle.start()
        await asyncio.wait_for(transport.waiting.wait(), timeout=20)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                SecureEmailWorkflow.resend_notice, await lifecycle.resend(handle)
            )
        assert refusal(refused).type == NOT_RESENDABLE
        assert "still being sent" in refusal(refused).message
        assert "opened" not in refusal(refused).message
        transport.gate.set()
        await lifecycle.mail(1)


async def test_resend_refused_once_opened(lifecycle: Lifecycle) -> None:
    handle, code = await passcode_mailed(lifecycle)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, code)
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            SecureEmailWorkflow.resend_notice, await lifecycle.resend(handle)
        )
    assert refusal(refused).type == NOT_RESENDABLE
    assert "already opened" in refusal(refused).message


# Bounces


async def test_a_bounce_fails_it_and_alerts_the_office(lifecycle: Lifecycle) -> None:
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    await handle.signal(SecureEmailWorkflow.notice_bounced, NoticeBounced(at=datetime.now()))
    final = await handle.result()
    assert final.status == SecureEmailStatus.FAILED
    last = lifecycle.status_log.changes[-1]
    assert (last.status, last.event) == (SecureEmailStatus.FAILED, EventKind.BOUNCED)
    assert lifecycle.status_log.notice_failures == [handle.id.removeprefix("secure-email-")]


async def test_a_bounce_the_webhook_did_not_record_changes_nothing(lifecycle: Lifecycle) -> None:
    lifecycle.status_log.reports_recorded = False
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    await handle.signal(SecureEmailWorkflow.notice_bounced, NoticeBounced(at=datetime.now()))
    await handle.signal(SecureEmailWorkflow.message_viewed)
    # An update after the signals is answered once they were handled.
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    state = await handle.query(SecureEmailWorkflow.state)
    assert (state.status, state.opened_at) == (SecureEmailStatus.SENT, None)
    assert lifecycle.status_log.notice_failures == []


async def test_a_bounce_after_opening_changes_nothing(lifecycle: Lifecycle) -> None:
    handle, code = await passcode_mailed(lifecycle)
    await handle.execute_update(
        SecureEmailWorkflow.verify_passcode, lifecycle.attempt(handle, code)
    )
    await handle.signal(SecureEmailWorkflow.notice_bounced, NoticeBounced(at=datetime.now()))
    # A query after the signal is answered once the signal was handled.
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    assert (await handle.query(SecureEmailWorkflow.state)).status == SecureEmailStatus.OPENED
    assert lifecycle.status_log.notice_failures == []


async def sent(handle: WorkflowHandle[Any, Any]) -> bool:
    state = await handle.query(SecureEmailWorkflow.state)
    return bool(state.status == SecureEmailStatus.SENT)
