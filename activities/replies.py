"""A patient's reply: recorded, raised as an office alert, its files filed into the chart.

Each activity is keyed by ids the workflow chose (reply id, attachment ids), so a retry
finds its earlier work done and does nothing twice.
"""

from __future__ import annotations

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.audit import ActorType, AuditAction
from domain.errors import UNKNOWN_SECURE_EMAIL
from domain.secure_email import NoticeFailed, ReplyAttachment, ReplyToFile, ReplyToRecord
from domain.secure_email_views import AlertKind
from infra.audit import Actor, audit
from infra.db.models import (
    Alert,
    Attachment,
    ChartDocument,
    PendingReply,
    Reply,
    SecureEmail,
)


class RepliesActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def record_reply(self, recording: ReplyToRecord) -> None:
        """Makes the reply part of the thread: the one the portal kept as pending (its
        text and files never pass through Temporal), or, for a reply a version-1 workflow
        accepted with its text in the payload, that."""
        reply = recording.reply
        async with self._sessions() as db:
            if await db.get(Reply, reply.reply_id) is not None:
                return
            secure_email = await db.get(SecureEmail, recording.secure_email_id)
            if secure_email is None:
                raise ApplicationError(
                    "secure email not found", type=UNKNOWN_SECURE_EMAIL, non_retryable=True
                )
            pending = await db.get(PendingReply, reply.reply_id)
            if pending is not None and pending.secure_email_id != secure_email.id:
                pending = None  # a reply id of another thread: never moved across
            if pending is not None:
                subject, body = pending.subject, pending.body
                files = TypeAdapter(list[ReplyAttachment]).validate_json(pending.attachments)
                await db.delete(pending)
            elif reply.body:
                subject, body, files = reply.subject, reply.body, reply.attachments
            else:
                raise ApplicationError(
                    "reply not found", type=UNKNOWN_SECURE_EMAIL, non_retryable=True
                )
            db.add(
                Reply(
                    id=reply.reply_id,
                    secure_email_id=secure_email.id,
                    practice_id=secure_email.practice_id,
                    patient_id=secure_email.patient_id,
                    subject=subject,
                    body=body,
                    sent_at=recording.sent_at,
                )
            )
            await db.flush()
            for item in files:
                db.add(
                    Attachment(
                        id=item.attachment_id,
                        secure_email_id=secure_email.id,
                        reply_id=reply.reply_id,
                        object_key=item.object_key,
                        filename=item.filename,
                        size=item.size,
                        content_type=item.content_type,
                        sha256=item.sha256,
                    )
                )
            audit(
                db,
                secure_email.practice_id,
                AuditAction.REPLY,
                Actor(ActorType.PATIENT, secure_email.patient_id, reply.client_address),
                patient_id=secure_email.patient_id,
                secure_email_id=secure_email.id,
                detail=f"{len(files)} attachment(s)",
            )
            try:
                await db.commit()
            except IntegrityError:
                # A concurrent attempt of this same activity got there first.
                await db.rollback()
                if await db.get(Reply, reply.reply_id) is None:
                    raise

    @activity.defn
    async def raise_alert(self, filing: ReplyToFile) -> None:
        async with self._sessions() as db:
            reply = await db.get(Reply, filing.reply_id)
            if reply is None:
                raise ApplicationError("reply not found", non_retryable=True)
            existing = await db.scalar(select(Alert.id).where(Alert.reply_id == reply.id))
            if existing is not None:
                return
            db.add(
                Alert(
                    practice_id=reply.practice_id,
                    patient_id=reply.patient_id,
                    kind=AlertKind.REPLY.value,
                    secure_email_id=reply.secure_email_id,
                    reply_id=reply.id,
                    # Staff may have opened the reply in the Email Client before this ran.
                    acknowledged_at=reply.read_at,
                )
            )
            try:
                await db.commit()
            except IntegrityError:
                await db.rollback()  # the unique reply id: already raised by another attempt

    @activity.defn
    async def file_to_chart(self, filing: ReplyToFile) -> None:
        async with self._sessions() as db:
            reply = await db.get(Reply, filing.reply_id)
            if reply is None:
                raise ApplicationError("reply not found", non_retryable=True)
            attachments = (
                await db.scalars(select(Attachment).where(Attachment.reply_id == reply.id))
            ).all()
            filed = set(
                (
                    await db.scalars(
                        select(ChartDocument.attachment_id).where(
                            ChartDocument.attachment_id.in_([a.id for a in attachments])
                        )
                    )
                ).all()
            )
            for attachment in attachments:
                if attachment.id not in filed:
                    db.add(
                        ChartDocument(
                            practice_id=reply.practice_id,
                            patient_id=reply.patient_id,
                            attachment_id=attachment.id,
                        )
                    )
            try:
                await db.commit()
            except IntegrityError:
                await db.rollback()
                raise  # a concurrent attempt filed some; the retry files the rest


class AlertActivities:
    """Alerts that are not replies: the office must know a patient got nothing."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def raise_notice_failed(self, failure: NoticeFailed) -> None:
        async with self._sessions() as db:
            secure_email = await db.get(SecureEmail, failure.secure_email_id)
            if secure_email is None:
                raise ApplicationError("secure email not found", non_retryable=True)
            raised = await db.scalar(
                select(Alert.id).where(
                    Alert.secure_email_id == secure_email.id,
                    Alert.kind == AlertKind.NOTICE_FAILED.value,
                )
            )
            if raised is None:
                db.add(
                    Alert(
                        practice_id=secure_email.practice_id,
                        patient_id=secure_email.patient_id,
                        kind=AlertKind.NOTICE_FAILED.value,
                        secure_email_id=secure_email.id,
                    )
                )
                await db.commit()
