"""``SecureEmailWorkflow``: one secure email from Send Secure to expiry.

It delivers the notice, then answers the patient's passcode requests, verifications and
replies (updates, because the portal needs an answer), and expires on a durable timer at
the time fixed when the office sent it (R8). It is the only writer of lifecycle state;
the database sees that state through the ``record_status`` activity.

Its history holds ids, counters, times, statuses and key ids, nothing else (R12): the
activities read addresses and names from the database by id, and derive the notice link
and each passcode from a key Temporal never sees. A verify carries the *check* of the
typed code, compared with the check of the mailed one, so no passcode is recorded.

The office can withdraw it, move its expiry (the timer moves: the main loop waits on
the current expiry and wakes when it changes), each only for a request the web app
recorded in the database first, and send the notice again while it is unopened; it
reminds an unopened patient once, at the time the practice chose; a notice SendGrid
reports bounced (a signal from its Event Webhook) fails it.

A conversation can outlive one history: when Temporal suggests it (the history grew
long), the workflow continues as new and hands its state to the next run.

Round trips: a secure email started since the ``FEWER_ROUND_TRIPS`` patch projects the
read model with local activities, run inside the workflow task that is happening anyway;
answers Verify before it projects "opened" (a separate short timer, so the patient is
not kept waiting on a database write); and files a reply (alert and chart) in one
activity. Secure emails started before keep the path their history recorded.

Open Dental: a secure email to an Open Dental patient of a connected practice
(``SecureEmailStart.open_dental``) logs its sending and each reply as commlogs there, and
puts each file the patient sends into their Imaging module. These run beside the
lifecycle, which never waits for them nor fails with them; a run waits for what is still
going only before it ends or continues as new. Any other secure email does exactly what
it did before.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.mail import MailActivities
    from activities.office_requests import OfficeRequestActivities
    from activities.read_model import ReadModelActivities
    from activities.replies import AlertActivities, RepliesActivities
    from activities.to_open_dental import ToOpenDentalActivities
    from domain.errors import (
        BAD_EXPIRY,
        BAD_REQUEST,
        EXPIRED,
        FAILED,
        NOT_DUE,
        NOT_REQUESTED,
        NOT_RESENDABLE,
        PERMANENT_MAIL_ERROR,
        REPLIES_HOURLY,
        REPLIES_TOTAL,
        TOO_MANY_PASSCODES,
        TOO_MANY_REPLIES,
        TOO_MANY_RESENDS,
        UNKNOWN_SECURE_EMAIL,
        WITHDRAWN,
    )
    from domain.open_dental import (
        OPEN_DENTAL_ATTEMPTS,
        CommlogToAdd,
        ReplyFilesToUpload,
    )
    from domain.passcodes import (
        MAX_PASSCODES_PER_HOUR,
        MAX_WRONG_TRIES,
        PASSCODE_VALID_FOR,
        RATE_WINDOW,
    )
    from domain.secure_email import (
        MAX_NOTICE_RESENDS,
        MAX_REPLIES,
        MAX_REPLIES_PER_HOUR,
        REPLY_WINDOW,
        RESEND_WINDOW,
        CarriedState,
        EventKind,
        ExpiryChange,
        ExpiryToRecord,
        IssuedPasscode,
        NoticeBounced,
        NoticeFailed,
        NoticeOccasion,
        NoticeResend,
        NoticeResent,
        NoticeToSend,
        OfficeChange,
        OfficeRequestToConfirm,
        PasscodeAttempt,
        PasscodeIssued,
        PasscodeRequest,
        PasscodeToSend,
        ReplyAccepted,
        ReplySubmitted,
        ReplyToFile,
        ReplyToRecord,
        ReportToConfirm,
        SecureEmailStart,
        SecureEmailState,
        SecureEmailStatus,
        StatusChange,
        VerifyOutcome,
        VerifyResult,
        Withdrawal,
        expiry_refusal,
        is_expired,
        unexpected_fields,
    )
    from infra.temporal.search_attributes import SECURE_EMAIL_STATUS

MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    # A refused address or a rejected API key will not get better by retrying, nor will
    # a secure email the database does not know.
    non_retryable_error_types=[PERMANENT_MAIL_ERROR, UNKNOWN_SECURE_EMAIL],
)
MAIL_TIMEOUT = timedelta(seconds=60)
QUICK_TIMEOUT = timedelta(seconds=30)

# Fewer round trips through the server: read-model projections as local activities,
# "opened" projected after Verify's answer, and a reply's alert and chart in one activity.
# Asked once, at the start of each run, so a history recorded before it takes the old
# path to its end (the SDK remembers the first answer). Same retirement plan as
# ``START_BOUND``: once no run started before the deploy is open (90 days after it),
# replace ``patched`` with ``workflow.deprecate_patch(FEWER_ROUND_TRIPS)`` and delete the
# old branches (and the ``raise_alert`` and ``file_to_chart`` activities); remove the
# deprecate call once no history recorded with the marker is open (another 90 days).
FEWER_ROUND_TRIPS = "lean-lifecycle"
# A start's input names its workflow (``SecureEmailStart.workflow_id``); a run whose input
# names another, or none, fails before it does anything: encrypted input copied from one
# history and started under another id (or a copy of an input from before the field).
# Runs started before the patch replay as they were. Retirement: once no run started
# before it is open (the longest lifetime, 90 days, after the deploy), replace
# ``patched`` with ``workflow.deprecate_patch(START_BOUND)`` and keep the check
# unconditional; remove the deprecate call once no history recorded with the marker
# is open either (another 90 days).
START_BOUND = "start-bound-to-workflow-id"
# ``message_viewed`` and ``notice_bounced`` change what the office sees only when the
# database holds what the web app recorded and audited first: the portal's view of the
# message, SendGrid's verified bounce. A signal sent by hand changes nothing. Same
# retirement plan as ``START_BOUND``.
REPORTS_CONFIRMED = "reports-confirmed-by-database"
# ``withdraw`` and ``change_expiry`` change something only once the update's request is
# claimed in the database: the one the web app recorded for this secure email, this kind
# of change, this staff user and (for an expiry) this time, and no other update's
# (``infra.office_requests``). The claim is a local activity inside the handler, so it
# adds a marker a history recorded before it lacks. Asked in the handler, not at the
# start of the run: a message sent before the deploy is checked from its first change
# after it, and a history whose change was recorded without the marker replays as it
# was (the SDK remembers the answer for the rest of the run). Retirement: once no run
# with an office change made before the deploy is open (90 days after it), replace
# ``patched`` with ``workflow.deprecate_patch(OFFICE_CONFIRMED)`` and keep the claim
# unconditional; remove the deprecate call once no history recorded with the marker is
# open either (another 90 days).
OFFICE_CONFIRMED = "office-changes-confirmed-by-database"
# Commlogs for the sending and each reply, and the reply's files, into the patient's Open
# Dental. Asked once, at the start of a run, and only by a secure email to an Open Dental
# patient (``SecureEmailStart.open_dental``): any other records no marker and replays as
# before; a run started before the deploy has no such input and never asks. Retirement:
# once no run started before the deploy is open (90 days after it), replace ``patched``
# with ``workflow.deprecate_patch(OPEN_DENTAL)``, keeping the ``open_dental`` condition;
# remove the deprecate call once no history recorded with the marker is open either
# (another 90 days).
OPEN_DENTAL = "open-dental-commlogs-and-files"

# Open Dental busy (429) or failing (5xx): from seconds to a few minutes apart, about a
# quarter of an hour in all; the activity tells the office at its last attempt.
OPEN_DENTAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=OPEN_DENTAL_ATTEMPTS,
)
# A file is at most 20 MB, sent as base64 in one request.
OPEN_DENTAL_TIMEOUT = timedelta(minutes=2)

# The timer that lets Verify's answer leave in its own workflow task before "opened" is
# written: a local activity would hold that task (and the answer) until it finished.
AFTER_ANSWER = timedelta(milliseconds=1)

EXPIRED_MESSAGE = "This secure email has expired"


def _within(moments: list[datetime], window: timedelta) -> list[datetime]:
    since = workflow.now() - window
    return [moment for moment in moments if moment > since]


def _refuse_without_request(request_id: str | None) -> None:
    if request_id is None:
        raise ApplicationError("Change it from the office", type=BAD_REQUEST)


def _minutes_until(moment: datetime) -> int:
    return max(1, math.ceil(int((moment - workflow.now()).total_seconds()) / 60))


# The type name is "SecureEmail", not the class's name: "SecureEmailWorkflow" was taken by
# the legacy workflow (``workflows.legacy``), and a type name is recorded in histories for
# good.
@workflow.defn(name="SecureEmail")
class SecureEmailWorkflow:
    @workflow.init
    def __init__(self, start: SecureEmailStart) -> None:
        self._start = start
        self._state = start.carried or CarriedState(status=SecureEmailStatus.SENDING)
        self._lock = asyncio.Lock()
        # Expiry changes are recorded in the order they were made.
        self._expiry_lock = asyncio.Lock()
        self._fewer_round_trips = workflow.patched(FEWER_ROUND_TRIPS)
        self._bound = workflow.patched(START_BOUND)
        self._confirmed = workflow.patched(REPORTS_CONFIRMED)
        # Projections that run after the update that caused them has answered.
        self._projections: list[asyncio.Task[None]] = []
        self._open_dental = start.open_dental and workflow.patched(OPEN_DENTAL)
        # What is on its way to Open Dental, beside the lifecycle.
        self._to_open_dental: list[asyncio.Task[None]] = []

    @workflow.run
    async def run(self, start: SecureEmailStart) -> SecureEmailState:
        if self._bound and start.workflow_id != workflow.info().workflow_id:
            raise ApplicationError(
                "this input was made for another workflow; nothing was sent",
                type=NOT_DUE,
                non_retryable=True,
            )
        if start.carried is None and not await self._deliver_notice():
            await self._finish_deferred_projections()
            return self.state()

        while not self._ended():
            expires_at = self._expires_at()
            remaining = expires_at - workflow.now()
            if remaining <= timedelta(0):
                break
            if self._reminder_due():
                await self._send_reminder()
                continue
            wake = remaining
            if self._reminder_pending() and self._start.reminder_at is not None:
                wake = min(wake, self._start.reminder_at - workflow.now())
            try:
                await workflow.wait_condition(partial(self._should_wake, expires_at), timeout=wake)
            except TimeoutError:
                continue  # the expiry or the reminder time came: the loop says which
            await self._file_replies()
            if self._history_is_long():
                await self._continue_as_new()
        if not self._ended():
            await self._set_status(SecureEmailStatus.EXPIRED)
        # Updates that started before expiry finish; the validators refuse new ones.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._file_replies()
        await self._finish_deferred_projections()
        await self._finish_open_dental()
        return self.state()

    def _should_wake(self, waiting_for: datetime) -> bool:
        return (
            bool(self._state.to_file)
            or self._history_is_long()
            or self._ended()
            # The updatable timer: a new expiry ends this wait, and the loop waits again
            # until the new one.
            or self._expires_at() != waiting_for
        )

    @workflow.query
    def state(self) -> SecureEmailState:
        return SecureEmailState(
            status=self._state.status,
            sent_at=self._start.sent_at,
            expires_at=self._expires_at(),
            opened_at=self._state.opened_at,
            passcodes_issued=self._state.passcodes_issued,
            reminder_at=self._start.reminder_at,
            reminder_sent=self._state.reminder_sent,
            notices_resent=self._state.notices_resent,
        )

    async def _send_notice(
        self, occasion: NoticeOccasion, number: int = 0, request_id: str | None = None
    ) -> None:
        start = self._start
        await workflow.execute_activity_method(
            MailActivities.send_notice,
            NoticeToSend(
                workflow_id=workflow.info().workflow_id,
                secure_email_id=start.secure_email_id,
                practice_id=start.practice_id,
                patient_id=start.patient_id,
                portal_key_id=start.portal_key_id,
                occasion=occasion,
                number=number,
                request_id=request_id,
            ),
            start_to_close_timeout=MAIL_TIMEOUT,
            # Past expiry the notice would only point at a warning page.
            schedule_to_close_timeout=max(
                self._expires_at() - workflow.now(), timedelta(seconds=1)
            ),
            retry_policy=MAIL_RETRY,
        )

    async def _deliver_notice(self) -> bool:
        start = self._start
        try:
            await self._send_notice(NoticeOccasion.FIRST)
        except ActivityError as error:
            if (
                isinstance(error.cause, ApplicationError)
                and error.cause.type == UNKNOWN_SECURE_EMAIL
            ):
                # Not a secure email the office sent (a forged start): nothing was sent,
                # and there is no office to alert nor read model to update.
                raise ApplicationError(
                    "no such secure email in the database; nothing was sent",
                    type=UNKNOWN_SECURE_EMAIL,
                    non_retryable=True,
                ) from None
            if isinstance(error.cause, ApplicationError) and error.cause.type == NOT_DUE:
                # The database holds no first notice due (a start copied from a history,
                # of a message already sent, withdrawn or closed): nothing was sent, and
                # what the office sees stays as it is. No recorded history has this
                # failure, so none replays differently.
                raise ApplicationError(
                    "the notice is not due in the database; nothing was sent",
                    type=NOT_DUE,
                    non_retryable=True,
                ) from None
            workflow.logger.warning("notice could not be delivered")
            await self._set_status(SecureEmailStatus.FAILED)
            await workflow.execute_activity_method(
                AlertActivities.raise_notice_failed,
                NoticeFailed(secure_email_id=start.secure_email_id),
                start_to_close_timeout=QUICK_TIMEOUT,
            )
            return False
        if self._state.status == SecureEmailStatus.SENDING:
            await self._set_status(SecureEmailStatus.SENT)
        if self._open_dental:
            self._tell_open_dental(self._add_commlog())
        return True

    # Passcodes (R6)

    @workflow.update
    async def request_passcode(self, request: PasscodeRequest) -> PasscodeIssued:
        async with self._lock:
            # Checked again under the lock: concurrent requests passed the validator together.
            self._refuse_if_closed()
            self._refuse_if_rate_limited()
            state = self._state
            now = workflow.now()
            # Counted before the mail goes, and the previous passcode stops working now.
            state.passcodes_issued += 1
            state.recent_passcodes = [*_within(state.recent_passcodes, RATE_WINDOW), now]
            state.passcode = None
            valid_until = now + PASSCODE_VALID_FOR
            sent = await workflow.execute_activity_method(
                MailActivities.send_passcode,
                PasscodeToSend(
                    workflow_id=workflow.info().workflow_id,
                    secure_email_id=self._start.secure_email_id,
                    practice_id=self._start.practice_id,
                    patient_id=self._start.patient_id,
                    counter=state.passcodes_issued,
                    valid_until=valid_until,
                ),
                start_to_close_timeout=MAIL_TIMEOUT,
                # The patient is waiting on the page; past this they can ask again.
                schedule_to_close_timeout=timedelta(minutes=2),
                retry_policy=MAIL_RETRY,
            )
            # Withdrawn (or bounced) while the mail went: the code it carries opens nothing.
            self._refuse_if_closed()
            state.passcode = IssuedPasscode(
                counter=state.passcodes_issued, issued_at=now, key_id=sent.key_id, check=sent.check
            )
            return PasscodeIssued(valid_until=valid_until)

    @request_passcode.validator
    def _validate_request_passcode(self, request: PasscodeRequest) -> None:
        self._refuse_if_closed()
        self._refuse_if_rate_limited()

    @workflow.update
    async def verify_passcode(self, attempt: PasscodeAttempt) -> VerifyResult:
        async with self._lock:
            self._refuse_if_closed()
            passcode = self._state.passcode
            if passcode is None or passcode.used:
                return VerifyResult(outcome=VerifyOutcome.NONE_ISSUED)
            if passcode.wrong_tries >= MAX_WRONG_TRIES:
                return VerifyResult(outcome=VerifyOutcome.BURNED)
            if workflow.now() - passcode.issued_at > PASSCODE_VALID_FOR:
                return VerifyResult(outcome=VerifyOutcome.TIMED_OUT)
            typed = attempt.checks.get(passcode.key_id, "")
            if not hmac.compare_digest(typed.encode(), passcode.check.encode()):
                passcode.wrong_tries += 1
                tries_left = MAX_WRONG_TRIES - passcode.wrong_tries
                outcome = VerifyOutcome.WRONG if tries_left else VerifyOutcome.BURNED
                return VerifyResult(outcome=outcome, tries_left=tries_left)
            passcode.used = True
            if self._state.opened_at is None:
                self._state.opened_at = workflow.now()
            if self._state.status in (SecureEmailStatus.SENDING, SecureEmailStatus.SENT):
                if self._fewer_round_trips:
                    self._after_answer(self._change_status(SecureEmailStatus.OPENED))
                else:
                    await self._set_status(SecureEmailStatus.OPENED)
            return VerifyResult(outcome=VerifyOutcome.OK)

    @verify_passcode.validator
    def _validate_verify_passcode(self, attempt: PasscodeAttempt) -> None:
        self._refuse_if_closed()
        if unexpected_fields(attempt):
            # A code in clear would be recorded in the history; only checks are taken.
            raise ApplicationError("Send the passcode's check, not the passcode", type=BAD_REQUEST)

    @workflow.signal
    async def message_viewed(self) -> None:
        """The patient opened this message from the portal's Inbox, having verified a
        passcode for another of their messages: it counts as opened too, once the
        database holds the portal's audited view of it."""
        if not self._unopened():
            return
        at = workflow.now()
        if self._confirmed:
            if not await self._confirm(ReadModelActivities.viewed_in_portal):
                workflow.logger.warning("message_viewed without the portal's view: ignored")
                return
            if not self._unopened():
                return  # opened meanwhile (a Verify)
        self._state.opened_at = at
        await self._set_status(SecureEmailStatus.OPENED)

    def _unopened(self) -> bool:
        return self._state.opened_at is None and self._state.status == SecureEmailStatus.SENT

    async def _confirm(self, check: Callable[[Any, ReportToConfirm], Awaitable[bool]]) -> bool:
        """What the web app recorded and audited, read from the database."""
        return await workflow.execute_local_activity_method(
            check,
            ReportToConfirm(secure_email_id=self._start.secure_email_id),
            start_to_close_timeout=QUICK_TIMEOUT,
        )

    # Replies (R9-R11)

    @workflow.update
    async def reply(self, reply: ReplySubmitted) -> ReplyAccepted:
        """Reply All, by id. Recorded before it is accepted, so the patient's Sent tab
        shows it; the office's alert and the chart follow from the main loop."""
        self._refuse_if_closed()
        self._refuse_if_too_many_replies()
        state = self._state
        sent_at = workflow.now()
        # Counted before the await: concurrent replies cannot pass the caps together.
        state.replies += 1
        state.recent_replies = [*_within(state.recent_replies, REPLY_WINDOW), sent_at]
        await self._record(
            RepliesActivities.record_reply,
            ReplyToRecord(
                secure_email_id=self._start.secure_email_id,
                reply=ReplySubmitted(reply_id=reply.reply_id),
                sent_at=sent_at,
            ),
        )
        if reply.reply_id not in state.to_file:
            state.to_file.append(reply.reply_id)
        # Withdrawn or bounced while it was recorded: the reply is kept (and filed), the
        # status stays what the office or the bounce made it.
        if state.status not in (
            SecureEmailStatus.REPLIED,
            SecureEmailStatus.WITHDRAWN,
            SecureEmailStatus.FAILED,
        ):
            await self._set_status(SecureEmailStatus.REPLIED)
        return ReplyAccepted(reply_id=reply.reply_id, sent_at=sent_at)

    @reply.validator
    def _validate_reply(self, reply: ReplySubmitted) -> None:
        self._refuse_if_closed()
        self._refuse_if_too_many_replies()
        if unexpected_fields(reply):
            # What the patient wrote stays in the database; the history takes the id only.
            raise ApplicationError("Send the reply's id, not its content", type=BAD_REQUEST)

    async def _file_replies(self) -> None:
        while self._state.to_file:
            filing = ReplyToFile(
                secure_email_id=self._start.secure_email_id, reply_id=self._state.to_file[0]
            )
            if self._fewer_round_trips:
                await workflow.execute_activity_method(
                    RepliesActivities.file_reply, filing, start_to_close_timeout=QUICK_TIMEOUT
                )
            else:
                await asyncio.gather(
                    workflow.execute_activity_method(
                        RepliesActivities.raise_alert, filing, start_to_close_timeout=QUICK_TIMEOUT
                    ),
                    workflow.execute_activity_method(
                        RepliesActivities.file_to_chart,
                        filing,
                        start_to_close_timeout=QUICK_TIMEOUT,
                    ),
                )
            self._state.to_file.pop(0)
            if self._open_dental:
                self._tell_open_dental(self._reply_to_open_dental(filing.reply_id))

    # Open Dental (R21)

    def _tell_open_dental(self, sending: Awaitable[None]) -> None:
        """Runs ``sending`` beside the lifecycle: Open Dental slow, failing or refusing
        changes nothing here (the activities tell the office what did not go)."""

        async def send() -> None:
            try:
                await sending
            except ActivityError:
                workflow.logger.warning("Open Dental did not take what this secure email sent")

        self._to_open_dental.append(asyncio.create_task(send()))

    async def _add_commlog(self, reply_id: str | None = None) -> None:
        await workflow.execute_activity_method(
            ToOpenDentalActivities.add_commlog,
            CommlogToAdd(secure_email_id=self._start.secure_email_id, reply_id=reply_id),
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=OPEN_DENTAL_RETRY,
        )

    async def _reply_to_open_dental(self, reply_id: str) -> None:
        """The reply's files first, then its commlog (which counts them), whether or not
        the files went."""
        try:
            await workflow.execute_activity_method(
                ToOpenDentalActivities.upload_reply_files,
                ReplyFilesToUpload(secure_email_id=self._start.secure_email_id, reply_id=reply_id),
                start_to_close_timeout=OPEN_DENTAL_TIMEOUT,
                retry_policy=OPEN_DENTAL_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("a reply's files did not go to Open Dental")
        await self._add_commlog(reply_id)

    async def _finish_open_dental(self) -> None:
        """Waits for what is still on its way to Open Dental, before the run ends or
        continues as new (a new run would not know of it)."""
        while self._to_open_dental:
            await self._to_open_dental.pop(0)

    # The office's changes (R15)

    @workflow.update
    async def withdraw(self, withdrawal: Withdrawal) -> SecureEmailState:
        """The office takes it back: from now the patient sees that it was withdrawn,
        never its words; a passcode already mailed opens nothing. Twice is once."""
        if not self._withdrawn():
            self._refuse_if_closed()
            if workflow.patched(OFFICE_CONFIRMED):
                await self._confirm_request(
                    OfficeChange.WITHDRAW, withdrawal.staff_id, withdrawal.request_id
                )
                if self._withdrawn():
                    return self.state()  # by another withdrawal meanwhile
                self._refuse_if_closed()
            self._state.passcode = None
            await self._set_status(SecureEmailStatus.WITHDRAWN)
        return self.state()

    @withdraw.validator
    def _validate_withdraw(self, withdrawal: Withdrawal) -> None:
        # Validators do not run when a history replays: a recorded withdrawal without a
        # request replays as it was.
        _refuse_without_request(withdrawal.request_id)
        if self._state.status != SecureEmailStatus.WITHDRAWN:
            self._refuse_if_closed()

    @workflow.update
    async def change_expiry(self, change: ExpiryChange) -> SecureEmailState:
        """Extends or shortens the message's life; the main loop's timer follows."""
        async with self._expiry_lock:
            self._refuse_if_closed()
            self._refuse_bad_expiry(change)
            if workflow.patched(OFFICE_CONFIRMED):
                await self._confirm_request(
                    OfficeChange.CHANGE_EXPIRY,
                    change.staff_id,
                    change.request_id,
                    change.expires_at,
                )
                # Withdrawn or expired while it was confirmed: nothing moves.
                self._refuse_if_closed()
                self._refuse_bad_expiry(change)
            state = self._state
            state.expires_at = change.expires_at
            state.expiry_changes += 1
            await self._record(
                ReadModelActivities.record_expiry,
                ExpiryToRecord(
                    secure_email_id=self._start.secure_email_id,
                    expires_at=change.expires_at,
                    at=workflow.now(),
                    number=state.expiry_changes,
                ),
            )
            return self.state()

    @change_expiry.validator
    def _validate_change_expiry(self, change: ExpiryChange) -> None:
        _refuse_without_request(change.request_id)
        self._refuse_if_closed()
        self._refuse_bad_expiry(change)

    async def _confirm_request(
        self,
        kind: OfficeChange,
        staff_id: str,
        request_id: str | None,
        expires_at: datetime | None = None,
    ) -> None:
        """Claims the office's request for this change in the database, for this update
        alone; refuses the update, having changed nothing, if there is none to claim."""
        confirmed = request_id is not None and await workflow.execute_local_activity_method(
            OfficeRequestActivities.confirm_office_request,
            OfficeRequestToConfirm(
                secure_email_id=self._start.secure_email_id,
                request_id=request_id,
                kind=kind,
                staff_id=staff_id,
                expires_at=expires_at,
            ),
            start_to_close_timeout=QUICK_TIMEOUT,
        )
        if not confirmed:
            workflow.logger.warning("%s without the office's request: refused", kind.value)
            raise ApplicationError(
                "The office did not ask for this change; nothing was changed",
                type=NOT_REQUESTED,
                non_retryable=True,
            )

    @workflow.update
    async def resend_notice(self, resend: NoticeResend) -> NoticeResent:
        """The same notice (the same link) again, for a patient who has not opened it."""
        self._refuse_if_not_resendable()
        state = self._state
        resent, recent = state.notices_resent, state.recent_resends
        state.notices_resent += 1
        state.recent_resends = [*_within(state.recent_resends, RESEND_WINDOW), workflow.now()]
        try:
            await self._send_notice(NoticeOccasion.RESEND, state.notices_resent, resend.request_id)
        except ActivityError as error:
            if not (isinstance(error.cause, ApplicationError) and error.cause.type == NOT_DUE):
                raise
            # Not a resend the office asked for (the database has no such request): it
            # counts for nothing. No recorded history has this failure.
            state.notices_resent, state.recent_resends = resent, recent
            raise ApplicationError(
                "The notice was not sent again: the office did not ask for it",
                type=NOT_DUE,
                non_retryable=True,
            ) from None
        return NoticeResent(resends_left=MAX_NOTICE_RESENDS - len(state.recent_resends))

    @resend_notice.validator
    def _validate_resend_notice(self, resend: NoticeResend) -> None:
        # Validators do not run when a history replays: a recorded resend without a
        # request replays as it was.
        if resend.request_id is None:
            raise ApplicationError("Resend the notice from the office", type=BAD_REQUEST)
        self._refuse_if_not_resendable()

    @workflow.signal
    async def notice_bounced(self, bounce: NoticeBounced) -> None:
        """SendGrid took the notice, then the patient's mail server refused it: the
        patient has nothing, and the office is told, as for a notice refused at once."""
        if not self._still_out():
            return  # opened, or closed already: the bounce changes nothing
        if self._confirmed:
            if not await self._confirm(ReadModelActivities.bounce_reported):
                workflow.logger.warning("notice_bounced without SendGrid's report: ignored")
                return
            if not self._still_out():
                return
        state = self._state
        state.passcode = None
        await self._set_status(SecureEmailStatus.FAILED, EventKind.BOUNCED)
        await workflow.execute_activity_method(
            AlertActivities.raise_notice_failed,
            NoticeFailed(secure_email_id=self._start.secure_email_id),
            start_to_close_timeout=QUICK_TIMEOUT,
        )

    def _still_out(self) -> bool:
        state = self._state
        return state.opened_at is None and state.status in (
            SecureEmailStatus.SENDING,
            SecureEmailStatus.SENT,
        )

    # Reminders

    def _reminder_pending(self) -> bool:
        """One reminder, for a notice nobody has opened yet."""
        return (
            self._start.reminder_at is not None
            and not self._state.reminder_sent
            and self._state.opened_at is None
            and self._state.status == SecureEmailStatus.SENT
        )

    def _reminder_due(self) -> bool:
        at = self._start.reminder_at
        return self._reminder_pending() and at is not None and workflow.now() >= at

    async def _send_reminder(self) -> None:
        self._state.reminder_sent = True
        try:
            await self._send_notice(NoticeOccasion.REMINDER)
        except ActivityError:
            # The first notice went; a reminder that cannot go changes nothing else.
            workflow.logger.warning("reminder could not be delivered")

    # Long conversations

    def _history_is_long(self) -> bool:
        return workflow.info().is_continue_as_new_suggested()

    async def _continue_as_new(self) -> None:
        # Every update in flight finishes here, and what it queued is filed and projected,
        # so the next run starts with nothing half done (each reply alerted and filed
        # exactly once).
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._file_replies()
        await self._finish_deferred_projections()
        await self._finish_open_dental()
        if not workflow.all_handlers_finished():
            return  # an update arrived while filing: the main loop comes back here
        state = self._state.model_copy(deep=True)
        state.recent_passcodes = _within(state.recent_passcodes, RATE_WINDOW)
        state.recent_replies = _within(state.recent_replies, REPLY_WINDOW)
        state.recent_resends = _within(state.recent_resends, RESEND_WINDOW)
        # The next run's input names this workflow, whatever this run's input named (a run
        # started before ``START_BOUND`` has none).
        workflow.continue_as_new(
            self._start.model_copy(
                update={"carried": state, "workflow_id": workflow.info().workflow_id}
            )
        )

    # Helpers

    def _expires_at(self) -> datetime:
        return self._state.expires_at or self._start.expires_at

    def _withdrawn(self) -> bool:
        return self._state.status == SecureEmailStatus.WITHDRAWN

    def _ended(self) -> bool:
        """Withdrawn, or failed after its notice went (a bounce): nothing more happens."""
        return self._state.status in (SecureEmailStatus.WITHDRAWN, SecureEmailStatus.FAILED)

    def _refuse_if_closed(self) -> None:
        status = self._state.status
        if status == SecureEmailStatus.WITHDRAWN:
            raise ApplicationError(
                "This secure email was withdrawn by the office", type=WITHDRAWN, non_retryable=True
            )
        if is_expired(status, self._expires_at(), workflow.now()):
            raise ApplicationError(EXPIRED_MESSAGE, type=EXPIRED, non_retryable=True)
        if status == SecureEmailStatus.FAILED:
            raise ApplicationError(
                "This secure email could not be delivered", type=FAILED, non_retryable=True
            )

    def _refuse_bad_expiry(self, change: ExpiryChange) -> None:
        refusal = expiry_refusal(change.expires_at, self._start.sent_at, workflow.now())
        if refusal is not None:
            raise ApplicationError(refusal, type=BAD_EXPIRY, non_retryable=True)

    def _refuse_if_not_resendable(self) -> None:
        self._refuse_if_closed()
        # Refusals change no command, so their words may change without a patch.
        if self._state.opened_at is not None:
            raise ApplicationError(
                "The patient has already opened this secure email, so the notice is not sent again",
                type=NOT_RESENDABLE,
                non_retryable=True,
            )
        if self._state.status != SecureEmailStatus.SENT:
            raise ApplicationError(
                "The notice is still being sent. Check its status in a minute before "
                "sending it again",
                type=NOT_RESENDABLE,
                non_retryable=True,
            )
        recent = _within(self._state.recent_resends, RESEND_WINDOW)
        if len(recent) >= MAX_NOTICE_RESENDS:
            hours = math.ceil(_minutes_until(recent[0] + RESEND_WINDOW) / 60)
            raise ApplicationError(
                f"The notice was already sent again {MAX_NOTICE_RESENDS} times today. "
                f"Try again in {hours} hours, or call the patient.",
                hours,
                type=TOO_MANY_RESENDS,
                non_retryable=True,
            )

    def _refuse_if_rate_limited(self) -> None:
        recent = _within(self._state.recent_passcodes, RATE_WINDOW)
        if len(recent) >= MAX_PASSCODES_PER_HOUR:
            minutes = _minutes_until(recent[0] + RATE_WINDOW)
            raise ApplicationError(
                f"Too many passcodes were requested. Try again in {minutes} minutes.",
                minutes,
                type=TOO_MANY_PASSCODES,
                non_retryable=True,
            )

    def _refuse_if_too_many_replies(self) -> None:
        if self._state.replies >= MAX_REPLIES:
            raise ApplicationError(
                f"This conversation already has {MAX_REPLIES} replies, the most one secure "
                "email can hold. Please call the office; they can send you a new secure email.",
                REPLIES_TOTAL,
                type=TOO_MANY_REPLIES,
                non_retryable=True,
            )
        recent = _within(self._state.recent_replies, REPLY_WINDOW)
        if len(recent) >= MAX_REPLIES_PER_HOUR:
            minutes = _minutes_until(recent[0] + REPLY_WINDOW)
            raise ApplicationError(
                f"You have sent {MAX_REPLIES_PER_HOUR} replies to this message in the last "
                f"hour. Please wait {minutes} minutes before replying again, or call the office.",
                REPLIES_HOURLY,
                minutes,
                type=TOO_MANY_REPLIES,
                non_retryable=True,
            )

    async def _set_status(self, status: SecureEmailStatus, event: EventKind | None = None) -> None:
        await self._record(ReadModelActivities.record_status, self._change_status(status, event))

    def _change_status(
        self, status: SecureEmailStatus, event: EventKind | None = None
    ) -> StatusChange:
        """The new status, in the workflow and its search attribute; what the read model
        is to record of it (numbered: the read model keeps only the newest)."""
        self._state.status = status
        self._state.status_changes += 1
        workflow.upsert_search_attributes([SECURE_EMAIL_STATUS.value_set(status.value)])
        return StatusChange(
            secure_email_id=self._start.secure_email_id,
            status=status,
            at=workflow.now(),
            sequence=self._state.status_changes,
            opened_at=self._state.opened_at,
            event=event,
        )

    async def _record(self, projection: Callable[[Any, Any], Awaitable[None]], change: Any) -> None:
        """Writes to the read model: a local activity (no round trip through the server)
        since ``FEWER_ROUND_TRIPS``, an activity before."""
        if self._fewer_round_trips:
            await workflow.execute_local_activity_method(
                projection, change, start_to_close_timeout=QUICK_TIMEOUT
            )
        else:
            await workflow.execute_activity_method(
                projection, change, start_to_close_timeout=QUICK_TIMEOUT
            )

    def _after_answer(self, change: StatusChange) -> None:
        async def project() -> None:
            await workflow.sleep(AFTER_ANSWER)
            await self._record(ReadModelActivities.record_status, change)

        self._projections.append(asyncio.create_task(project()))

    async def _finish_deferred_projections(self) -> None:
        """Waits for what ``_after_answer`` deferred, before the run ends or continues."""
        while self._projections:
            await self._projections.pop(0)
