"""The patient's chart (R11): the files a patient sent with replies, filed for the office.

Every read takes the staff member's reach (``domain.reach``), so another practice's ids,
and a patient out of reach, find nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from domain.reach import Reach
from domain.secure_email_views import ChartDocumentPublic
from infra.db.engine import commit_or_refusal
from infra.db.models import Attachment, ChartDocument, Patient, Reply, SecureEmail
from infra.reach import within


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


def _chart(reach: Reach, patient_id: str) -> Select[ChartDocument, Attachment, str]:
    return (
        select(ChartDocument, Attachment, SecureEmail.subject)
        .join(Attachment, Attachment.id == ChartDocument.attachment_id)
        .join(SecureEmail, SecureEmail.id == Attachment.secure_email_id)
        .join(Patient, Patient.id == ChartDocument.patient_id)
        .where(ChartDocument.patient_id == patient_id, *within(reach))
    )


async def chart_of(db: AsyncSession, reach: Reach, patient_id: str) -> list[ChartEntry]:
    """The files a patient sent, newest first."""
    statement = _chart(reach, patient_id).order_by(ChartDocument.filed_at.desc(), ChartDocument.id)
    entries = [ChartEntry(*row) for row in (await db.execute(statement))]
    # File names are encrypted (SQL cannot sort them): newest first, then by name.
    entries.sort(key=lambda entry: entry.attachment.filename)
    entries.sort(key=lambda entry: entry.document.filed_at, reverse=True)
    return entries


async def chart_entry(
    db: AsyncSession, reach: Reach, patient_id: str, document_id: str
) -> ChartEntry | None:
    statement = _chart(reach, patient_id).where(ChartDocument.id == document_id)
    row = (await db.execute(statement)).first()
    return ChartEntry(*row) if row is not None else None


async def file_reply(db: AsyncSession, reply: Reply) -> None:
    """Files each of the reply's attachments once, however often it is asked for."""
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
    refused = await commit_or_refusal(db)
    if refused is not None:
        raise refused  # a concurrent attempt filed some; the retry files the rest
