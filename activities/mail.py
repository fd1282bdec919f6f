"""Delivering the notice and the passcode email (R5, R6).

Each Message-ID is derived from the workflow id and the step, so a retried delivery
carries the same id and a mail server or client that has seen it can drop the copy.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.notices import EmailContent, notice_email, passcode_email, portal_link
from domain.passcodes import passcode_for
from domain.secure_email import NoticeToDeliver, PasscodeToDeliver
from infra.mail.message import MailMessage
from infra.mail.transport import MailTransport, PermanentMailError, TemporaryMailError


class MailActivities:
    def __init__(self, transport: MailTransport, public_url: str) -> None:
        self._transport = transport
        self._public_url = public_url

    @activity.defn
    async def deliver_notice(self, notice: NoticeToDeliver) -> None:
        content = notice_email(
            notice.practice_name,
            portal_link(self._public_url, notice.link_token),
            notice.expires_at,
        )
        await self._send(
            notice.patient_address,
            notice.sender_address,
            notice.practice_name,
            content,
            _message_id(notice.workflow_id, "notice", notice.sender_address),
        )

    @activity.defn
    async def deliver_passcode(self, passcode: PasscodeToDeliver) -> None:
        code = passcode_for(passcode.secret, passcode.counter)
        content = passcode_email(passcode.practice_name, code, passcode.valid_until)
        await self._send(
            passcode.patient_address,
            passcode.sender_address,
            passcode.practice_name,
            content,
            _message_id(
                passcode.workflow_id, f"passcode-{passcode.counter}", passcode.sender_address
            ),
        )

    async def _send(
        self, to: str, sender: str, sender_name: str, content: EmailContent, message_id: str
    ) -> None:
        try:
            message = MailMessage(
                to=to,
                sender=sender,
                sender_name=sender_name,
                subject=content.subject,
                text=content.text,
                html=content.html,
                message_id=message_id,
            )
        except ValidationError as error:
            # An address the mail model refuses will not become valid on a retry.
            fields = ", ".join(str(item["loc"][0]) for item in error.errors())
            raise ApplicationError(
                f"mail could not be built: invalid {fields}",
                type="PermanentMailError",
                non_retryable=True,
            ) from None
        try:
            await self._transport.send(message)
        except PermanentMailError as error:
            raise ApplicationError(
                str(error), type="PermanentMailError", non_retryable=True
            ) from error
        except TemporaryMailError as error:
            # Honour the server's Retry-After (SendGrid 429) instead of our own backoff.
            delay = error.retry_after
            raise ApplicationError(
                str(error),
                type="TemporaryMailError",
                next_retry_delay=None if delay is None else timedelta(seconds=delay),
            ) from error


def _message_id(workflow_id: str, step: str, sender: str) -> str:
    return f"<{workflow_id}.{step}@{sender.rpartition('@')[2]}>"
