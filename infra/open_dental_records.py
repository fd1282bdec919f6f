"""What a secure email puts into the patient's Open Dental, as the database knows it:
whether its patient is linked to the practice's Open Dental (a PatNum, a connector), and
what went already (``OpenDentalRecord``: a DocNum or CommlogNum, or why Open Dental
refused it), so a retry sends nothing twice (R21)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.patient_sources import PatientSource
from infra import clinics
from infra.audit import SYSTEM, audit
from infra.db.engine import commit_or_refusal
from infra.db.models import (
    Attachment,
    OpenDentalIntegration,
    OpenDentalRecord,
    Patient,
    Reply,
    SecureEmail,
)
from infra.open_dental import integration_of

# Open Dental writes times as the office's clock reads them, to the second.
OPEN_DENTAL_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class OpenDentalLink:
    """A secure email whose patient is an Open Dental patient of a connected practice,
    as read at once (a session rolled back expires what it loaded)."""

    integration: OpenDentalIntegration
    pat_num: int
    practice_id: str
    patient_id: str
    secure_email_id: str
    sent_at: datetime
    expires_at: datetime
    # The practice's zone (its clinic's, for a message sent for one): Open Dental's times
    # are the office's.
    time_zone: str


def is_open_dental_patient(patient: Patient) -> bool:
    return patient.external_source == PatientSource.OPEN_DENTAL.value and bool(
        (patient.external_id or "").isdigit()
    )


async def goes_to_open_dental(db: AsyncSession, patient: Patient) -> bool:
    """Whether a secure email sent to ``patient`` now is logged in their Open Dental."""
    return (
        is_open_dental_patient(patient)
        and await integration_of(db, patient.practice_id) is not None
    )


async def link_of(db: AsyncSession, secure_email_id: str) -> OpenDentalLink | None:
    """The secure email's Open Dental patient and connector; None when either is gone
    (the connector removed, the patient no longer from Open Dental)."""
    secure_email = await db.get(SecureEmail, secure_email_id)
    if secure_email is None:
        return None
    patient = await db.get(Patient, secure_email.patient_id)
    integration = await integration_of(db, secure_email.practice_id)
    if patient is None or integration is None or not is_open_dental_patient(patient):
        return None
    practice = await clinics.practice_of_message(db, secure_email)
    return OpenDentalLink(
        integration=integration,
        pat_num=int(patient.external_id or 0),
        practice_id=secure_email.practice_id,
        patient_id=secure_email.patient_id,
        secure_email_id=secure_email.id,
        sent_at=secure_email.sent_at,
        expires_at=secure_email.expires_at,
        time_zone=practice.time_zone if practice is not None else "UTC",
    )


def office_time(moment: datetime, zone: str) -> str:
    """``moment`` as Open Dental takes a time: the office's clock, "yyyy-MM-dd HH:mm:ss"."""
    try:
        office = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        office = ZoneInfo("UTC")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(office).strftime(OPEN_DENTAL_TIME)


def document_key(attachment_id: str) -> str:
    return f"document:{attachment_id}"


def commlog_key(secure_email_id: str, reply_id: str | None) -> str:
    return f"commlog:reply:{reply_id}" if reply_id else f"commlog:sent:{secure_email_id}"


async def is_recorded(db: AsyncSession, key: str) -> bool:
    return (
        await db.scalar(select(OpenDentalRecord.id).where(OpenDentalRecord.key == key)) is not None
    )


async def record(
    db: AsyncSession,
    link: OpenDentalLink,
    key: str,
    what: str,
    *,
    number: int | None = None,
    refused: str | None = None,
) -> None:
    """Records what went (its number) or why it was refused, audited as the system's
    doing ("a reply's file, DocNum 12"), with whatever else the session holds (an
    alert). A concurrent attempt's record of the same key stands."""
    db.add(
        OpenDentalRecord(
            practice_id=link.practice_id,
            key=key,
            number=number,
            refused=refused[:200] if refused else None,
        )
    )
    numbered = "DocNum" if key.startswith("document:") else "CommlogNum"
    audit(
        db,
        link.practice_id,
        AuditAction.OPEN_DENTAL_SENT,
        SYSTEM,
        patient_id=link.patient_id,
        secure_email_id=link.secure_email_id,
        detail=f"{what}: refused" if refused else f"{what}, {numbered} {number}",
    )
    await commit_or_refusal(db)


async def reply_files(db: AsyncSession, reply: Reply) -> list[Attachment]:
    """The files of a reply, in the order the patient attached them."""
    found = await db.scalars(
        select(Attachment)
        .where(Attachment.reply_id == reply.id)
        .order_by(Attachment.created_at, Attachment.id)
    )
    return list(found)
