"""Office alerts (R10): raised when a patient replies, a notice cannot be delivered, a
message expires unopened, its workflow stops unexpectedly or Open Dental refuses a file
the patient sent, shown on the Main Menu until acknowledged.

Every read takes the staff member's reach (``domain.reach``), so another practice's ids,
and alerts about patients out of reach, find nothing.
Raising is idempotent: one alert per reply, one notice-failed, expired-unopened and
stopped alert per secure email, one Open Dental alert per file.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from domain.reach import Reach
from domain.secure_email_views import AlertKind, AlertPublic
from infra.db.engine import commit_or_refusal
from infra.db.models import Alert, Attachment, Patient, Reply, SecureEmail
from infra.reach import within
from infra.secure_emails import Owner

ALERTS_SHOWN = 50


def _alerts(reach: Reach) -> Select[Alert, str, str | None]:
    return (
        select(Alert, Patient.name, Attachment.filename)
        .join(Patient, Patient.id == Alert.patient_id)
        .outerjoin(Reply, Reply.id == Alert.reply_id)
        .outerjoin(Attachment, Attachment.id == Alert.attachment_id)
        .where(Alert.practice_id == reach.practice_id, *within(reach))
    )


# An alert for a reply staff have already read is not news (the Email Client may open a
# reply before its alert is raised).
_UNSETTLED = (
    Alert.acknowledged_at.is_(None),
    or_(Alert.reply_id.is_(None), Reply.read_at.is_(None)),
)


def _public(alert: Alert, patient_name: str, file_name: str | None = None) -> AlertPublic:
    return AlertPublic(
        id=alert.id,
        kind=AlertKind(alert.kind),
        patient_id=alert.patient_id,
        patient_name=patient_name,
        reply_id=alert.reply_id,
        secure_email_id=alert.secure_email_id,
        created_at=alert.created_at,
        acknowledged_at=alert.acknowledged_at,
        file_name=file_name,
    )


async def open_alerts(
    db: AsyncSession, reach: Reach, limit: int = ALERTS_SHOWN
) -> list[AlertPublic]:
    """Unacknowledged alerts, newest first."""
    statement = (
        _alerts(reach).where(*_UNSETTLED).order_by(Alert.created_at.desc(), Alert.id).limit(limit)
    )
    return [_public(*row) for row in (await db.execute(statement))]


async def count_open_alerts(db: AsyncSession, reach: Reach) -> int:
    statement = (
        select(func.count(Alert.id))
        .join(Patient, Patient.id == Alert.patient_id)
        .outerjoin(Reply, Reply.id == Alert.reply_id)
        .where(Alert.practice_id == reach.practice_id, *within(reach), *_UNSETTLED)
    )
    return int(await db.scalar(statement) or 0)


async def acknowledge_alert(db: AsyncSession, reach: Reach, alert_id: str) -> AlertPublic | None:
    """Idempotent: acknowledging twice keeps the first time. None, and nothing
    acknowledged, for an alert out of reach."""
    if (await db.execute(_alerts(reach).where(Alert.id == alert_id))).first() is None:
        return None
    await db.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=datetime.now(UTC))
    )
    await db.commit()
    row = (await db.execute(_alerts(reach).where(Alert.id == alert_id))).first()
    return _public(*row) if row is not None else None


async def raise_for_reply(db: AsyncSession, reply: Reply) -> None:
    """The alert of a reply, once however often it is asked for."""
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
    # Refused by the unique reply id: another attempt raised it already.
    await commit_or_refusal(db)


async def _raise_once(db: AsyncSession, owner: Owner | SecureEmail, kind: AlertKind) -> None:
    """Adds the alert of this kind for this secure email unless it was raised before."""
    raised = await db.scalar(
        select(Alert.id).where(Alert.secure_email_id == owner.id, Alert.kind == kind.value)
    )
    if raised is None:
        db.add(
            Alert(
                practice_id=owner.practice_id,
                patient_id=owner.patient_id,
                kind=kind.value,
                secure_email_id=owner.id,
            )
        )


async def raise_notice_failed(db: AsyncSession, secure_email: SecureEmail) -> None:
    """The office must know a patient got nothing; once per secure email."""
    await _raise_once(db, secure_email, AlertKind.NOTICE_FAILED)
    await db.commit()


async def raise_expired_unopened(db: AsyncSession, owner: Owner) -> None:
    """It expired before the patient opened it; once per secure email. Not committed: the
    status change that found it unopened commits both."""
    await _raise_once(db, owner, AlertKind.EXPIRED_UNOPENED)


def raise_open_dental_refused(
    db: AsyncSession, practice_id: str, patient_id: str, secure_email_id: str, attachment_id: str
) -> None:
    """Open Dental refused a file the patient sent: the office must put it there by hand
    (it is in this product's chart). Once per file: the caller records the refusal in
    the same transaction, and a file with a recorded refusal is never tried again."""
    db.add(
        Alert(
            practice_id=practice_id,
            patient_id=patient_id,
            kind=AlertKind.OPEN_DENTAL_REFUSED.value,
            secure_email_id=secure_email_id,
            attachment_id=attachment_id,
        )
    )


async def raise_stopped(db: AsyncSession, owner: Owner) -> None:
    """Its workflow ended before the message did: the office sends it again. Once per
    secure email; not committed (marking it failed commits both)."""
    await _raise_once(db, owner, AlertKind.STOPPED)
