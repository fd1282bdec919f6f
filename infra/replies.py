"""The office's reads of patients' replies: alerts, Email Client threads, the chart.

Every query takes the staff user's practice id, so another practice's ids find nothing
(the routes answer 404, never 403, and confirm nothing exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from domain.secure_email_views import AlertKind, AlertPublic, ChartDocumentPublic
from infra.db.models import Alert, Attachment, ChartDocument, Patient, Reply, SecureEmail

ALERTS_SHOWN = 50
THREADS_SHOWN = 100


# Alerts (R10) ---------------------------------------------------------------------------


def _alerts(practice_id: str) -> Select[Alert, str]:
    return (
        select(Alert, Patient.name)
        .join(Patient, Patient.id == Alert.patient_id)
        .outerjoin(Reply, Reply.id == Alert.reply_id)
        .where(Alert.practice_id == practice_id)
    )


# An alert for a reply staff have already read is not news (the Email Client may open a
# reply before its alert is raised).
_UNSETTLED = (
    Alert.acknowledged_at.is_(None),
    or_(Alert.reply_id.is_(None), Reply.read_at.is_(None)),
)


def _public(alert: Alert, patient_name: str) -> AlertPublic:
    return AlertPublic(
        id=alert.id,
        kind=AlertKind(alert.kind),
        patient_id=alert.patient_id,
        patient_name=patient_name,
        reply_id=alert.reply_id,
        secure_email_id=alert.secure_email_id,
        created_at=alert.created_at,
        acknowledged_at=alert.acknowledged_at,
    )


async def open_alerts(
    db: AsyncSession, practice_id: str, limit: int = ALERTS_SHOWN
) -> list[AlertPublic]:
    """Unacknowledged alerts, newest first."""
    statement = (
        _alerts(practice_id)
        .where(*_UNSETTLED)
        .order_by(Alert.created_at.desc(), Alert.id)
        .limit(limit)
    )
    return [_public(*row) for row in (await db.execute(statement))]


async def count_open_alerts(db: AsyncSession, practice_id: str) -> int:
    statement = (
        select(func.count(Alert.id))
        .outerjoin(Reply, Reply.id == Alert.reply_id)
        .where(Alert.practice_id == practice_id, *_UNSETTLED)
    )
    return int(await db.scalar(statement) or 0)


async def acknowledge_alert(
    db: AsyncSession, practice_id: str, alert_id: str
) -> AlertPublic | None:
    """Idempotent: acknowledging twice keeps the first time."""
    await db.execute(
        update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.practice_id == practice_id,
            Alert.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=datetime.now(UTC))
    )
    await db.commit()
    row = (await db.execute(_alerts(practice_id).where(Alert.id == alert_id))).first()
    return _public(*row) if row is not None else None


# Email Client -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyLine:
    id: str
    sent_at: datetime
    read: bool


@dataclass(frozen=True)
class Thread:
    """A secure email with the patient's replies to it."""

    secure_email_id: str
    subject: str
    patient_id: str
    patient_name: str
    reply_count: int
    unread_count: int
    latest_at: datetime
    replies: list[ReplyLine]


async def threads(db: AsyncSession, practice_id: str, limit: int = THREADS_SHOWN) -> list[Thread]:
    """Threads with replies: those with unread replies first, then the newest."""
    unread = func.count(case((Reply.read_at.is_(None), 1)))
    counts = (
        select(
            Reply.secure_email_id.label("secure_email_id"),
            func.count(Reply.id).label("reply_count"),
            unread.label("unread_count"),
            func.max(Reply.sent_at).label("latest_at"),
        )
        .where(Reply.practice_id == practice_id)
        .group_by(Reply.secure_email_id)
        .subquery()
    )
    statement = (
        select(
            SecureEmail.id,
            SecureEmail.subject,
            Patient.id,
            Patient.name,
            counts.c.reply_count,
            counts.c.unread_count,
            counts.c.latest_at,
        )
        .join(counts, counts.c.secure_email_id == SecureEmail.id)
        .join(Patient, Patient.id == SecureEmail.patient_id)
        .where(SecureEmail.practice_id == practice_id)
        .order_by(
            case((counts.c.unread_count > 0, 0), else_=1),
            counts.c.latest_at.desc(),
            SecureEmail.id,
        )
        .limit(limit)
    )
    rows = (await db.execute(statement)).all()
    lines: dict[str, list[ReplyLine]] = {row[0]: [] for row in rows}
    if lines:
        replies = await db.execute(
            select(Reply.id, Reply.secure_email_id, Reply.sent_at, Reply.read_at)
            .where(Reply.secure_email_id.in_(list(lines)), Reply.practice_id == practice_id)
            .order_by(Reply.sent_at.desc(), Reply.id)
        )
        for reply_id, secure_email_id, sent_at, read_at in replies:
            lines[secure_email_id].append(ReplyLine(reply_id, sent_at, read_at is not None))
    return [
        Thread(
            secure_email_id=secure_email_id,
            subject=subject,
            patient_id=patient_id,
            patient_name=patient_name,
            reply_count=int(reply_count),
            unread_count=int(unread_count),
            # SQLite hands back an aggregate's datetime without the column's type.
            latest_at=_utc(latest_at),
            replies=lines[secure_email_id],
        )
        for (
            secure_email_id,
            subject,
            patient_id,
            patient_name,
            reply_count,
            unread_count,
            latest_at,
        ) in rows
    ]


def _utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def reply_of_practice(db: AsyncSession, practice_id: str, reply_id: str) -> Reply | None:
    reply = await db.get(Reply, reply_id)
    return reply if reply is not None and reply.practice_id == practice_id else None


async def mark_read(db: AsyncSession, reply: Reply) -> None:
    """Opening a reply reads it and settles its alert; the first reader's time stays."""
    now = datetime.now(UTC)
    await db.execute(
        update(Reply).where(Reply.id == reply.id, Reply.read_at.is_(None)).values(read_at=now)
    )
    await db.execute(
        update(Alert)
        .where(Alert.reply_id == reply.id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now)
    )
    await db.commit()
    await db.refresh(reply)


async def files_of_replies(db: AsyncSession, reply_ids: list[str]) -> dict[str, list[Attachment]]:
    found: dict[str, list[Attachment]] = {reply_id: [] for reply_id in reply_ids}
    if reply_ids:
        statement = (
            select(Attachment)
            .where(Attachment.reply_id.in_(reply_ids))
            .order_by(Attachment.created_at, Attachment.id)
        )
        for attachment in await db.scalars(statement):
            if attachment.reply_id is not None:
                found[attachment.reply_id].append(attachment)
    # File names are encrypted (SQL cannot sort them): sorted here, stable on the id order.
    for files in found.values():
        files.sort(key=lambda attachment: (attachment.created_at, attachment.filename))
    return found


async def replies_to(db: AsyncSession, secure_email_id: str) -> list[Reply]:
    statement = (
        select(Reply)
        .where(Reply.secure_email_id == secure_email_id)
        .order_by(Reply.sent_at, Reply.id)
    )
    return list((await db.scalars(statement)).all())


# Chart (R11) --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartEntry:
    document: ChartDocument
    attachment: Attachment
    secure_email_subject: str

    def public(self) -> ChartDocumentPublic:
        return ChartDocumentPublic(
            id=self.document.id,
            filename=self.attachment.filename,
            size=self.attachment.size,
            content_type=self.attachment.content_type,
            filed_at=self.document.filed_at,
            secure_email_id=self.attachment.secure_email_id,
        )


def _chart(practice_id: str, patient_id: str) -> Select[ChartDocument, Attachment, str]:
    return (
        select(ChartDocument, Attachment, SecureEmail.subject)
        .join(Attachment, Attachment.id == ChartDocument.attachment_id)
        .join(SecureEmail, SecureEmail.id == Attachment.secure_email_id)
        .where(ChartDocument.practice_id == practice_id, ChartDocument.patient_id == patient_id)
    )


async def chart_of(db: AsyncSession, practice_id: str, patient_id: str) -> list[ChartEntry]:
    """The files a patient sent, newest first."""
    statement = _chart(practice_id, patient_id).order_by(
        ChartDocument.filed_at.desc(), ChartDocument.id
    )
    entries = [ChartEntry(*row) for row in (await db.execute(statement))]
    # File names are encrypted (SQL cannot sort them): newest first, then by name.
    entries.sort(key=lambda entry: entry.attachment.filename)
    entries.sort(key=lambda entry: entry.document.filed_at, reverse=True)
    return entries


async def chart_entry(
    db: AsyncSession, practice_id: str, patient_id: str, document_id: str
) -> ChartEntry | None:
    statement = _chart(practice_id, patient_id).where(ChartDocument.id == document_id)
    row = (await db.execute(statement)).first()
    return ChartEntry(*row) if row is not None else None
