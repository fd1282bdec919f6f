"""Delivering the notice and the passcode email (R5, R6).

The workflow names the secure email; the addresses, the practice's name and sender are
read here from the database, so a history holds none of them and a change of the
practice's name or sender is the one used at the moment of sending. A secure email the
database does not know, or whose practice and patient differ from the workflow's, gets
nothing sent (a forged start fails closed).

Each Message-ID is derived from the workflow id and the step, so a retried delivery
carries the same id and a mail server or client that has seen it can drop the copy.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.claims import this_activity
from domain.errors import (
    NOT_DUE,
    PERMANENT_MAIL_ERROR,
    TEMPORARY_MAIL_ERROR,
    UNKNOWN_SECURE_EMAIL,
)
from domain.notices import portal_link
from domain.secure_email import (
    EventKind,
    NoticeOccasion,
    NoticeToSend,
    PasscodeSent,
    PasscodeToSend,
    is_closed,
    workflow_id_for,
)
from infra import clinics, notice_claims, practices, secure_emails, timeline
from infra.crypto import portal_secrets
from infra.crypto.keys import PortalKeys, UnknownKey
from infra.db.engine import DATABASE_ERRORS
from infra.mail.message import MailMessage
from infra.mail.patient_mails import PatientMail, Practice, notice_mail, passcode_mail
from infra.mail.transport import MailTransport, PermanentMailError, TemporaryMailError
from infra.security import token_hash

# How long a mail's timeline line waits for the database once the mail went: well within
# the mail activities' 60 s limit (``workflows.secure_email``).
RECORD_AFTER_MAILING = timedelta(seconds=40)


@dataclass(frozen=True)
class Recipient:
    """What the mail needs, as the database has it at the moment of sending."""

    secure_email_id: str
    # Who sends it, as its mails show it: the practice, or the clinic the message was
    # sent for (its name, zone, phone and address), with the practice's logo.
    practice: Practice
    sender_address: str
    patient_address: str
    link_token_hash: str
    expires_at: datetime
    status: str
    # The language the mails are written in (``infra.i18n.LANGUAGES``): the patient's.
    language: str


class MailActivities:
    def __init__(
        self,
        transport: MailTransport,
        public_url: str,
        sessions: async_sessionmaker[AsyncSession],
        portal_keys: PortalKeys,
    ) -> None:
        self._transport = transport
        self._public_url = public_url
        self._sessions = sessions
        self._portal_keys = portal_keys

    @activity.defn
    async def send_notice(self, notice: NoticeToSend) -> None:
        to = await self._recipient(notice.workflow_id, notice.practice_id, notice.patient_id)
        try:
            token = portal_secrets.link_token(
                self._portal_keys, notice.portal_key_id, notice.secure_email_id
            )
        except UnknownKey:
            raise ApplicationError(
                f"portal key {notice.portal_key_id!r} is not in SECURE_EMAIL_PORTAL_KEYSET",
                type=UNKNOWN_SECURE_EMAIL,
                non_retryable=True,
            ) from None
        occasion = notice.occasion
        if token_hash(token) != to.link_token_hash:
            raise unknown("the link does not match the one the office sent")
        if not await self._claim(notice):
            return  # it went in an earlier attempt, and the patient has used it
        await self._send_notice(
            to, notice.workflow_id, token, to.expires_at, occasion, notice.number
        )
        if occasion == NoticeOccasion.FIRST:
            await self._add_to_timeline(to, EventKind.NOTICE_EMAILED, "notice")
        elif occasion == NoticeOccasion.REMINDER:
            await self._add_to_timeline(to, EventKind.REMINDER_SENT, "reminder")
        elif occasion == NoticeOccasion.RESEND:
            await self._add_to_timeline(to, EventKind.NOTICE_RESENT, f"resend:{notice.number}")

    @activity.defn
    async def send_passcode(self, passcode: PasscodeToSend) -> PasscodeSent:
        to = await self._recipient(passcode.workflow_id, passcode.practice_id, passcode.patient_id)
        if is_closed(to.status, to.expires_at, datetime.now(UTC)):
            # A run started from a copied history asks for one after the message closed.
            raise _not_due("the secure email is closed")
        # Issued under the current key; the check tells the workflow which key to expect.
        ring = self._portal_keys
        key_id = ring.current_id
        code = portal_secrets.passcode(ring, key_id, passcode.secure_email_id, passcode.counter)
        await self._send_passcode(
            to, passcode.workflow_id, code, passcode.counter, passcode.valid_until
        )
        await self._add_to_timeline(to, EventKind.PASSCODE_SENT, f"passcode:{passcode.counter}")
        return PasscodeSent(
            key_id=key_id,
            check=portal_secrets.passcode_check(ring, key_id, passcode.secure_email_id, code),
        )

    async def _send_notice(
        self,
        to: Recipient,
        workflow_id: str,
        link_token: str,
        expires_at: datetime,
        occasion: NoticeOccasion = NoticeOccasion.FIRST,
        number: int = 0,
    ) -> None:
        if token_hash(link_token) != to.link_token_hash:
            raise unknown("the link does not match the one the office sent")
        link = portal_link(self._public_url, link_token)
        step = {
            NoticeOccasion.FIRST: "notice",
            NoticeOccasion.REMINDER: "reminder",
            NoticeOccasion.RESEND: f"notice-{number}",
        }[occasion]
        await self._send(
            to,
            notice_mail(
                to.practice,
                link,
                expires_at,
                to.language,
                reminder=occasion == NoticeOccasion.REMINDER,
            ),
            _message_id(workflow_id, step, to.sender_address),
            "notice",
        )

    async def _send_passcode(
        self, to: Recipient, workflow_id: str, code: str, counter: int, valid_until: datetime
    ) -> None:
        await self._send(
            to,
            passcode_mail(to.practice, code, valid_until, to.language),
            _message_id(workflow_id, f"passcode-{counter}", to.sender_address),
            "passcode",
        )

    async def _claim(self, notice: NoticeToSend) -> bool:
        """The database's word that this notice is due, for this activity only: True to
        mail it; False when this activity mailed the first notice in an earlier attempt
        and the patient has already opened it (nothing to send again)."""
        claimant, now = this_activity(), datetime.now(UTC)
        async with self._sessions() as db:
            claimed = await notice_claims.claim(
                db, notice.secure_email_id, notice.occasion, notice.request_id, claimant, now
            )
            if claimed:
                return True
            if notice.occasion == NoticeOccasion.FIRST and await notice_claims.went_before(
                db, notice.secure_email_id, claimant, now
            ):
                return False
        raise _not_due(f"the {notice.occasion.value} notice is not due")

    async def _recipient(
        self, workflow_id: str, practice_id: str | None = None, patient_id: str | None = None
    ) -> Recipient:
        """The secure email behind ``workflow_id``, if the database knows it as given."""
        secure_email_id = workflow_id.removeprefix(workflow_id_for(""))
        async with self._sessions() as db:
            found = await secure_emails.parties(db, secure_email_id)
            if found is None or workflow_id_for(found.secure_email.id) != workflow_id:
                raise unknown("no such secure email")
            secure_email, practice, patient = found.secure_email, found.practice, found.patient
            if practice_id is not None and secure_email.practice_id != practice_id:
                raise unknown("the practice does not match")
            if patient_id is not None and secure_email.patient_id != patient_id:
                raise unknown("the patient does not match")
            if practice is None or patient is None or patient.practice_id != practice.id:
                raise unknown("the practice or patient is gone")
            # The clinic the message was sent for sends it, with its phone and zone (R19).
            shown = await clinics.practice_of_message(db, secure_email) or practice
            if not shown.sender_address:
                raise ApplicationError(
                    "the practice has no sender address",
                    type=PERMANENT_MAIL_ERROR,
                    non_retryable=True,
                )
            return Recipient(
                secure_email_id=secure_email.id,
                practice=Practice(
                    name=shown.name,
                    time_zone=shown.time_zone,
                    phone=shown.phone,
                    address=shown.address,
                    logo=await practices.logo_of(db, practice) if practice.logo_type else None,
                    logo_type=practice.logo_type,
                ),
                sender_address=shown.sender_address,
                # Bound to the address it was sent to: a patient's new address gets new
                # messages only (older rows did not keep it: the patient's own).
                patient_address=secure_email.recipient_address or patient.email,
                link_token_hash=secure_email.link_token_hash,
                expires_at=secure_email.expires_at,
                status=secure_email.status,
                # The patient's own: the notice is the first thing they read.
                language=patient.language,
            )

    async def _add_to_timeline(self, to: Recipient, kind: EventKind, key: str) -> None:
        # After the mail went: a retry that sends again finds the line there. A database
        # away for a moment (restarting) is waited for here, within the activity's time
        # limit, rather than failing it: its retry would mail the patient again.
        waited, pause = 0.0, 0.5
        while True:
            try:
                async with self._sessions() as db:
                    await timeline.add(db, to.secure_email_id, kind, datetime.now(UTC), key)
                    await db.commit()
                return
            except DATABASE_ERRORS:
                if waited + pause > RECORD_AFTER_MAILING.total_seconds():
                    raise
                await asyncio.sleep(pause)
                waited, pause = waited + pause, min(pause * 2, 5.0)

    async def _send(self, to: Recipient, content: PatientMail, message_id: str, mail: str) -> None:
        try:
            message = MailMessage(
                **asdict(content),
                to=to.patient_address,
                sender=to.sender_address,
                sender_name=to.practice.name,
                message_id=message_id,
                # SendGrid hands these back in its Event Webhook (bounces, deliveries).
                tracking={"secure_email_id": to.secure_email_id, "mail": mail},
            )
        except ValidationError as error:
            # An address the mail model refuses will not become valid on a retry.
            fields = ", ".join(str(item["loc"][0]) for item in error.errors())
            raise ApplicationError(
                f"mail could not be built: invalid {fields}",
                type=PERMANENT_MAIL_ERROR,
                non_retryable=True,
            ) from None
        try:
            await self._transport.send(message)
        except PermanentMailError as error:
            raise ApplicationError(
                str(error), type=PERMANENT_MAIL_ERROR, non_retryable=True
            ) from error
        except TemporaryMailError as error:
            # Honour the server's Retry-After (SendGrid 429) instead of our own backoff.
            delay = error.retry_after
            raise ApplicationError(
                str(error),
                type=TEMPORARY_MAIL_ERROR,
                next_retry_delay=None if delay is None else timedelta(seconds=delay),
            ) from error


def unknown(why: str) -> ApplicationError:
    # Says why in words for the operator, without naming anyone.
    return ApplicationError(f"nothing sent: {why}", type=UNKNOWN_SECURE_EMAIL, non_retryable=True)


def _not_due(why: str) -> ApplicationError:
    return ApplicationError(f"nothing sent: {why}", type=NOT_DUE, non_retryable=True)


def _message_id(workflow_id: str, step: str, sender: str) -> str:
    return f"<{workflow_id}.{step}@{sender.rpartition('@')[2]}>"
