"""``SecureEmailWorkflow``: one secure email from Send Secure to expiry.

It delivers the notice, then answers the patient's passcode requests, verifications and
replies (updates, because the portal needs an answer), and expires on a durable timer at
the time fixed when the office sent it (R8). It is the only writer of lifecycle state;
the database sees that state through the ``record_status`` activity.

Its history holds ids, counters, times, statuses and key ids, nothing else (R12): the
activities read addresses and names from the database by id, and derive the notice link
and each passcode from a key Temporal never sees. A verify carries the *check* of the
typed code, compared with the check of the mailed one, so no passcode is recorded.

A conversation can outlive one history: when Temporal suggests it (the history grew
long), the workflow continues as new and hands its state to the next run.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.mail import MailActivities
    from activities.read_model import ReadModelActivities
    from activities.replies import AlertActivities, RepliesActivities
    from domain.errors import (
        BAD_REQUEST,
        EXPIRED,
        FAILED,
        PERMANENT_MAIL_ERROR,
        REPLIES_HOURLY,
        REPLIES_TOTAL,
        TOO_MANY_PASSCODES,
        TOO_MANY_REPLIES,
        UNKNOWN_SECURE_EMAIL,
    )
    from domain.passcodes import (
        MAX_PASSCODES_PER_HOUR,
        MAX_WRONG_TRIES,
        PASSCODE_VALID_FOR,
        RATE_WINDOW,
    )
    from domain.secure_email import (
        MAX_REPLIES,
        MAX_REPLIES_PER_HOUR,
        REPLY_WINDOW,
        CarriedState,
        IssuedPasscode,
        NoticeFailed,
        NoticeToSend,
        PasscodeAttempt,
        PasscodeIssued,
        PasscodeRequest,
        PasscodeToSend,
        ReplyAccepted,
        ReplySubmitted,
        ReplyToFile,
        ReplyToRecord,
        SecureEmailStart,
        SecureEmailState,
        SecureEmailStatus,
        StatusChange,
        VerifyOutcome,
        VerifyResult,
        is_expired,
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

EXPIRED_MESSAGE = "This secure email has expired"


def _within(moments: list[datetime], window: timedelta) -> list[datetime]:
    since = workflow.now() - window
    return [moment for moment in moments if moment > since]


def _minutes_until(moment: datetime) -> int:
    return max(1, -(-int((moment - workflow.now()).total_seconds()) // 60))


@workflow.defn(name="SecureEmail")
class SecureEmailWorkflow:
    @workflow.init
    def __init__(self, start: SecureEmailStart) -> None:
        self._start = start
        self._state = start.carried or CarriedState(status=SecureEmailStatus.SENDING)
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, start: SecureEmailStart) -> SecureEmailState:
        if start.carried is None and not await self._deliver_notice():
            return self.state()

        while (remaining := start.expires_at - workflow.now()) > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: bool(self._state.to_file) or self._history_is_long(),
                    timeout=remaining,
                )
            except TimeoutError:
                break
            await self._file_replies()
            if self._history_is_long():
                await self._continue_as_new()
        await self._set_status(SecureEmailStatus.EXPIRED)
        # Updates that started before expiry finish; the validators refuse new ones.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._file_replies()
        return self.state()

    @workflow.query
    def state(self) -> SecureEmailState:
        return SecureEmailState(
            status=self._state.status,
            sent_at=self._start.sent_at,
            expires_at=self._start.expires_at,
            opened_at=self._state.opened_at,
            passcodes_issued=self._state.passcodes_issued,
        )

    async def _deliver_notice(self) -> bool:
        start = self._start
        try:
            await workflow.execute_activity_method(
                MailActivities.send_notice,
                NoticeToSend(
                    workflow_id=workflow.info().workflow_id,
                    secure_email_id=start.secure_email_id,
                    practice_id=start.practice_id,
                    patient_id=start.patient_id,
                    portal_key_id=start.portal_key_id,
                ),
                start_to_close_timeout=MAIL_TIMEOUT,
                # Past expiry the notice would only point at a warning page.
                schedule_to_close_timeout=max(
                    start.expires_at - workflow.now(), timedelta(seconds=1)
                ),
                retry_policy=MAIL_RETRY,
            )
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
                await self._set_status(SecureEmailStatus.OPENED)
            return VerifyResult(outcome=VerifyOutcome.OK)

    @verify_passcode.validator
    def _validate_verify_passcode(self, attempt: PasscodeAttempt) -> None:
        self._refuse_if_closed()
        if attempt.passcode:
            # A code in clear would be recorded in the history; only checks are taken.
            raise ApplicationError("Send the passcode's check, not the passcode", type=BAD_REQUEST)

    @workflow.signal
    async def message_viewed(self) -> None:
        """The patient opened this message from the portal's Inbox, having verified a
        passcode for another of their messages: it counts as opened too."""
        if self._state.opened_at is None and self._state.status == SecureEmailStatus.SENT:
            self._state.opened_at = workflow.now()
            await self._set_status(SecureEmailStatus.OPENED)

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
        await workflow.execute_activity_method(
            RepliesActivities.record_reply,
            ReplyToRecord(
                secure_email_id=self._start.secure_email_id,
                reply=ReplySubmitted(reply_id=reply.reply_id, client_address=reply.client_address),
                sent_at=sent_at,
            ),
            start_to_close_timeout=QUICK_TIMEOUT,
        )
        if reply.reply_id not in state.to_file:
            state.to_file.append(reply.reply_id)
        if state.status != SecureEmailStatus.REPLIED:
            await self._set_status(SecureEmailStatus.REPLIED)
        return ReplyAccepted(reply_id=reply.reply_id, sent_at=sent_at)

    @reply.validator
    def _validate_reply(self, reply: ReplySubmitted) -> None:
        self._refuse_if_closed()
        self._refuse_if_too_many_replies()
        if reply.subject or reply.body or reply.attachments:
            # What the patient wrote stays in the database; the history takes the id only.
            raise ApplicationError("Send the reply's id, not its content", type=BAD_REQUEST)

    async def _file_replies(self) -> None:
        while self._state.to_file:
            filing = ReplyToFile(
                secure_email_id=self._start.secure_email_id, reply_id=self._state.to_file[0]
            )
            await asyncio.gather(
                workflow.execute_activity_method(
                    RepliesActivities.raise_alert, filing, start_to_close_timeout=QUICK_TIMEOUT
                ),
                workflow.execute_activity_method(
                    RepliesActivities.file_to_chart, filing, start_to_close_timeout=QUICK_TIMEOUT
                ),
            )
            self._state.to_file.pop(0)

    # Long conversations

    def _history_is_long(self) -> bool:
        return workflow.info().is_continue_as_new_suggested()

    async def _continue_as_new(self) -> None:
        # Every update in flight finishes here, and what it queued is filed, so the next
        # run starts with nothing half done (each reply alerted and filed exactly once).
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._file_replies()
        if not workflow.all_handlers_finished():
            return  # an update arrived while filing: the main loop comes back here
        state = self._state.model_copy(deep=True)
        state.recent_passcodes = _within(state.recent_passcodes, RATE_WINDOW)
        state.recent_replies = _within(state.recent_replies, REPLY_WINDOW)
        workflow.continue_as_new(self._start.model_copy(update={"carried": state}))

    # Helpers

    def _refuse_if_closed(self) -> None:
        status = self._state.status
        if is_expired(status, self._start.expires_at, workflow.now()):
            raise ApplicationError(EXPIRED_MESSAGE, type=EXPIRED, non_retryable=True)
        if status == SecureEmailStatus.FAILED:
            raise ApplicationError(
                "This secure email could not be delivered", type=FAILED, non_retryable=True
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

    async def _set_status(self, status: SecureEmailStatus) -> None:
        self._state.status = status
        self._state.status_changes += 1
        workflow.upsert_search_attributes([SECURE_EMAIL_STATUS.value_set(status.value)])
        await workflow.execute_activity_method(
            ReadModelActivities.record_status,
            StatusChange(
                secure_email_id=self._start.secure_email_id,
                status=status,
                at=workflow.now(),
                sequence=self._state.status_changes,
                opened_at=self._state.opened_at,
            ),
            start_to_close_timeout=QUICK_TIMEOUT,
        )
