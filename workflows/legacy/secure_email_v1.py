"""Version 1 of a secure email's workflow, frozen: only for messages already running.

Its input and history hold the patient's address, the practice's name and sender, the
link token and a passcode secret. ``workflows.secure_email`` replaced it (ids only);
every secure email sent since runs there. The worker keeps this type registered under
its old name until the last version-1 message has expired (at most 90 days after the
release that replaced it), then ``workflows.legacy`` goes (its docstring says how).

Do not change what this code does: recorded histories (tests/workflows/histories/
lifecycle-00[12].json) must replay. Only the reply validator changed, which a history
does not record: the portal now keeps a reply's text in the database and sends its id.
Verify's input has a class of its own (``PasscodeInClear``) that decodes the same JSON.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.legacy import LEGACY_WORKFLOW_TYPE

with workflow.unsafe.imports_passed_through():
    from activities.legacy import (
        LegacyMailActivities,
        NoticeToDeliver,
        PasscodeToDeliver,
        make_passcode_secret,
        passcode_for,
    )
    from activities.read_model import ReadModelActivities
    from activities.replies import AlertActivities, RepliesActivities
    from domain.errors import EXPIRED, FAILED, PERMANENT_MAIL_ERROR, TOO_MANY_PASSCODES
    from domain.passcodes import (
        MAX_PASSCODES_PER_HOUR,
        MAX_WRONG_TRIES,
        PASSCODE_VALID_FOR,
        RATE_WINDOW,
    )
    from domain.secure_email import (
        NoticeFailed,
        PasscodeIssued,
        PasscodeRequest,
        ReplyAccepted,
        ReplySubmitted,
        ReplyToFile,
        ReplyToRecord,
        SecureEmailState,
        SecureEmailStatus,
        StatusChange,
        VerifyOutcome,
        VerifyResult,
        is_expired,
    )
    from infra.temporal.search_attributes import SECURE_EMAIL_STATUS
    from workflows.legacy.inputs import PasscodeInClear, SecureEmailInput

MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    # A refused address or a rejected API key will not get better by retrying.
    non_retryable_error_types=[PERMANENT_MAIL_ERROR],
)
MAIL_TIMEOUT = timedelta(seconds=60)
QUICK_TIMEOUT = timedelta(seconds=30)

EXPIRED_MESSAGE = "This secure email has expired"


class _Passcode:
    """The passcode most recently issued; earlier ones stop working when a new one is sent."""

    def __init__(self, counter: int, issued_at: datetime) -> None:
        self.counter = counter
        self.issued_at = issued_at
        self.wrong_tries = 0
        self.used = False


# Registered as "SecureEmailWorkflow", the type its histories record; the class is named
# for what it is, so the current ``SecureEmailWorkflow`` (type "SecureEmail") keeps its name.
@workflow.defn(name=LEGACY_WORKFLOW_TYPE)
class LegacySecureEmailWorkflow:
    @workflow.init
    def __init__(self, secure_email: SecureEmailInput) -> None:
        self._input = secure_email
        self._status = SecureEmailStatus.SENDING
        self._opened_at: datetime | None = None
        self._secret: str | None = None
        self._issued: list[datetime] = []
        self._passcode: _Passcode | None = None
        self._lock = asyncio.Lock()
        self._changes = 0
        # Replies recorded but not yet alerted and filed into the chart.
        self._to_file: list[str] = []

    @workflow.run
    async def run(self, secure_email: SecureEmailInput) -> SecureEmailState:
        try:
            await workflow.execute_activity_method(
                LegacyMailActivities.deliver_notice,
                NoticeToDeliver(
                    workflow_id=workflow.info().workflow_id,
                    practice_name=secure_email.practice_name,
                    sender_address=secure_email.sender_address,
                    patient_address=secure_email.patient_address,
                    link_token=secure_email.link_token,
                    expires_at=secure_email.expires_at,
                ),
                start_to_close_timeout=MAIL_TIMEOUT,
                # Past expiry the notice would only point at a warning page.
                schedule_to_close_timeout=max(
                    secure_email.expires_at - workflow.now(), timedelta(seconds=1)
                ),
                retry_policy=MAIL_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("notice could not be delivered")
            await self._set_status(SecureEmailStatus.FAILED)
            await workflow.execute_activity_method(
                AlertActivities.raise_notice_failed,
                NoticeFailed(secure_email_id=secure_email.secure_email_id),
                start_to_close_timeout=QUICK_TIMEOUT,
            )
            return self.state()
        if self._status == SecureEmailStatus.SENDING:
            await self._set_status(SecureEmailStatus.SENT)

        while (remaining := secure_email.expires_at - workflow.now()) > timedelta(0):
            try:
                await workflow.wait_condition(lambda: bool(self._to_file), timeout=remaining)
            except TimeoutError:
                break
            await self._file_replies()
        await self._set_status(SecureEmailStatus.EXPIRED)
        # Updates that started before expiry finish; the validators refuse new ones.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._file_replies()
        return self.state()

    @workflow.query
    def state(self) -> SecureEmailState:
        return SecureEmailState(
            status=self._status,
            sent_at=self._input.sent_at,
            expires_at=self._input.expires_at,
            opened_at=self._opened_at,
            passcodes_issued=len(self._issued),
        )

    # Passcodes (R6)

    @workflow.update
    async def request_passcode(self, request: PasscodeRequest) -> PasscodeIssued:
        async with self._lock:
            # Checked again under the lock: concurrent requests passed the validator together.
            self._refuse_if_closed()
            self._refuse_if_rate_limited()
            if self._secret is None:
                self._secret = await workflow.execute_activity(
                    make_passcode_secret, start_to_close_timeout=QUICK_TIMEOUT
                )
            now = workflow.now()
            self._issued.append(now)
            passcode = _Passcode(counter=len(self._issued), issued_at=now)
            self._passcode = passcode
            valid_until = now + PASSCODE_VALID_FOR
            await workflow.execute_activity_method(
                LegacyMailActivities.deliver_passcode,
                PasscodeToDeliver(
                    workflow_id=workflow.info().workflow_id,
                    practice_name=self._input.practice_name,
                    sender_address=self._input.sender_address,
                    patient_address=self._input.patient_address,
                    secret=self._secret,
                    counter=passcode.counter,
                    valid_until=valid_until,
                ),
                start_to_close_timeout=MAIL_TIMEOUT,
                # The patient is waiting on the page; past this they can ask again.
                schedule_to_close_timeout=timedelta(minutes=2),
                retry_policy=MAIL_RETRY,
            )
            return PasscodeIssued(valid_until=valid_until)

    @request_passcode.validator
    def _validate_request_passcode(self, request: PasscodeRequest) -> None:
        self._refuse_if_closed()
        self._refuse_if_rate_limited()

    @workflow.update
    async def verify_passcode(self, attempt: PasscodeInClear) -> VerifyResult:
        async with self._lock:
            self._refuse_if_closed()
            passcode = self._passcode
            if passcode is None or passcode.used:
                return VerifyResult(outcome=VerifyOutcome.NONE_ISSUED)
            if passcode.wrong_tries >= MAX_WRONG_TRIES:
                return VerifyResult(outcome=VerifyOutcome.BURNED)
            if workflow.now() - passcode.issued_at > PASSCODE_VALID_FOR:
                return VerifyResult(outcome=VerifyOutcome.TIMED_OUT)
            expected = passcode_for(self._secret or "", passcode.counter)
            if not hmac.compare_digest(expected.encode(), attempt.passcode.encode()):
                passcode.wrong_tries += 1
                tries_left = MAX_WRONG_TRIES - passcode.wrong_tries
                outcome = VerifyOutcome.WRONG if tries_left else VerifyOutcome.BURNED
                return VerifyResult(outcome=outcome, tries_left=tries_left)
            passcode.used = True
            if self._opened_at is None:
                self._opened_at = workflow.now()
            if self._status in (SecureEmailStatus.SENDING, SecureEmailStatus.SENT):
                await self._set_status(SecureEmailStatus.OPENED)
            return VerifyResult(outcome=VerifyOutcome.OK)

    @verify_passcode.validator
    def _validate_verify_passcode(self, attempt: PasscodeInClear) -> None:
        self._refuse_if_closed()

    @workflow.signal
    async def message_viewed(self) -> None:
        """The patient opened this message from the portal's Inbox, having verified a
        passcode for another of their messages: it counts as opened too."""
        if self._opened_at is None and self._status == SecureEmailStatus.SENT:
            self._opened_at = workflow.now()
            await self._set_status(SecureEmailStatus.OPENED)

    # Replies (R9-R11)

    @workflow.update
    async def reply(self, reply: ReplySubmitted) -> ReplyAccepted:
        """Reply All. Recorded before it is accepted, so the patient's Sent tab shows it;
        the office's alert and the chart follow from the main loop."""
        self._refuse_if_closed()
        sent_at = workflow.now()
        await workflow.execute_activity_method(
            RepliesActivities.record_reply,
            ReplyToRecord(
                secure_email_id=self._input.secure_email_id, reply=reply, sent_at=sent_at
            ),
            start_to_close_timeout=QUICK_TIMEOUT,
        )
        if reply.reply_id not in self._to_file:
            self._to_file.append(reply.reply_id)
        if self._status != SecureEmailStatus.REPLIED:
            await self._set_status(SecureEmailStatus.REPLIED)
        return ReplyAccepted(reply_id=reply.reply_id, sent_at=sent_at)

    @reply.validator
    def _validate_reply(self, reply: ReplySubmitted) -> None:
        self._refuse_if_closed()

    async def _file_replies(self) -> None:
        while self._to_file:
            filing = ReplyToFile(
                secure_email_id=self._input.secure_email_id, reply_id=self._to_file[0]
            )
            await asyncio.gather(
                workflow.execute_activity_method(
                    RepliesActivities.raise_alert, filing, start_to_close_timeout=QUICK_TIMEOUT
                ),
                workflow.execute_activity_method(
                    RepliesActivities.file_to_chart, filing, start_to_close_timeout=QUICK_TIMEOUT
                ),
            )
            self._to_file.pop(0)

    # Helpers

    def _refuse_if_closed(self) -> None:
        if is_expired(self._status, self._input.expires_at, workflow.now()):
            raise ApplicationError(EXPIRED_MESSAGE, type=EXPIRED, non_retryable=True)
        if self._status == SecureEmailStatus.FAILED:
            raise ApplicationError(
                "This secure email could not be delivered", type=FAILED, non_retryable=True
            )

    def _refuse_if_rate_limited(self) -> None:
        since = workflow.now() - RATE_WINDOW
        recent = [moment for moment in self._issued if moment > since]
        if len(recent) >= MAX_PASSCODES_PER_HOUR:
            wait = recent[0] + RATE_WINDOW - workflow.now()
            minutes = max(1, -(-int(wait.total_seconds()) // 60))
            raise ApplicationError(
                f"Too many passcodes were requested. Try again in {minutes} minutes.",
                minutes,
                type=TOO_MANY_PASSCODES,
                non_retryable=True,
            )

    async def _set_status(self, status: SecureEmailStatus) -> None:
        self._status = status
        self._changes += 1
        workflow.upsert_search_attributes([SECURE_EMAIL_STATUS.value_set(status.value)])
        await workflow.execute_activity_method(
            ReadModelActivities.record_status,
            StatusChange(
                secure_email_id=self._input.secure_email_id,
                status=status,
                at=workflow.now(),
                sequence=self._changes,
                opened_at=self._opened_at,
            ),
            start_to_close_timeout=QUICK_TIMEOUT,
        )
