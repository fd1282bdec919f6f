"""A patient's reply: recorded, raised as an office alert, its files filed into the chart.

Each activity is keyed by ids the workflow chose (reply id, attachment ids), so a retry
finds its earlier work done and does nothing twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.legacy import written_in_payload
from domain.audit import ActorType, AuditAction
from domain.errors import UNKNOWN_SECURE_EMAIL
from domain.secure_email import EventKind, NoticeFailed, ReplyToFile, ReplyToRecord
from infra import alerts, chart, replies, secure_emails, timeline
from infra.audit import Actor, audit_secure_email
from infra.db.engine import finishes_when_cancelled
from infra.db.models import Reply


class RepliesActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    @finishes_when_cancelled  # run as a local activity: infra.db.engine says why
    async def record_reply(self, recording: ReplyToRecord) -> None:
        """Makes the reply part of the thread: the one the portal kept as pending (its
        text and files never pass through Temporal), or the one the payload carries
        (``activities.legacy.written_in_payload``). A pending reply is audited in the
        same commit, with the patient's client address the portal kept beside it (no
        history holds it). A payload's reply was audited by the portal as it was sent."""
        reply = recording.reply
        async with self._sessions() as db:
            if await replies.reply(db, reply.reply_id) is not None:
                return
            secure_email = await secure_emails.find(db, recording.secure_email_id)
            if secure_email is None:
                raise ApplicationError(
                    "secure email not found", type=UNKNOWN_SECURE_EMAIL, non_retryable=True
                )
            pending = await replies.take_pending(db, secure_email.id, reply.reply_id)
            written = pending.written if pending else written_in_payload(reply)
            if written is None:
                raise ApplicationError(
                    "reply not found", type=UNKNOWN_SECURE_EMAIL, non_retryable=True
                )
            await replies.add_to_thread(
                db, secure_email, reply.reply_id, written, recording.sent_at
            )
            if pending is not None:
                patient = Actor(ActorType.PATIENT, secure_email.patient_id, pending.client_address)
                detail = f"{len(written.files)} attachment(s)"
                audit_secure_email(db, secure_email, AuditAction.REPLY, patient, detail=detail)
            await timeline.add(
                db,
                secure_email.id,
                EventKind.REPLIED,
                recording.sent_at,
                f"reply:{reply.reply_id}",
            )
            # A concurrent attempt of this same activity may have got there first.
            await replies.commit_recorded(db, reply.reply_id)

    @activity.defn
    async def file_reply(self, filing: ReplyToFile) -> None:
        """The chart first, then the office's alert: when staff see the alert, the
        patient's files are in the chart. One activity, so one round trip to the server."""
        async with self._sessions() as db:
            reply = await self._reply(db, filing)
            await chart.file_reply(db, reply)
            await alerts.raise_for_reply(db, reply)

    # The same two steps, run side by side by secure emails whose workflow took the path
    # without the "lean-lifecycle" patch; kept for them while any is open.

    @activity.defn
    async def raise_alert(self, filing: ReplyToFile) -> None:
        async with self._sessions() as db:
            await alerts.raise_for_reply(db, await self._reply(db, filing))

    @activity.defn
    async def file_to_chart(self, filing: ReplyToFile) -> None:
        async with self._sessions() as db:
            await chart.file_reply(db, await self._reply(db, filing))

    @staticmethod
    async def _reply(db: AsyncSession, filing: ReplyToFile) -> Reply:
        found = await replies.reply(db, filing.reply_id)
        if found is None:
            raise ApplicationError("reply not found", non_retryable=True)
        return found


class AlertActivities:
    """Alerts that are not replies: the office must know a patient got nothing."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def raise_notice_failed(self, failure: NoticeFailed) -> None:
        async with self._sessions() as db:
            secure_email = await secure_emails.find(db, failure.secure_email_id)
            if secure_email is None:
                raise ApplicationError("secure email not found", non_retryable=True)
            await alerts.raise_notice_failed(db, secure_email)
