"""The input a secure email's workflow starts with, from its row: the same whether it is
sent now (``web.services.sending``) or resumed after its workflow was lost
(``infra.resumable``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.secure_email import SecureEmailStart, reminder_time
from infra.db.models import Patient, SecureEmail
from infra.open_dental_records import goes_to_open_dental


async def workflow_start(
    db: AsyncSession,
    secure_email: SecureEmail,
    patient: Patient | None,
    portal_key_id: str,
    reminder_after_hours: int,
) -> SecureEmailStart:
    """Its ids and times; the reminder by the practice's setting given; whether its
    sending and replies go to Open Dental (an Open Dental patient of a connected
    practice)."""
    return SecureEmailStart(
        secure_email_id=secure_email.id,
        practice_id=secure_email.practice_id,
        patient_id=secure_email.patient_id,
        sent_at=secure_email.sent_at,
        expires_at=secure_email.expires_at,
        portal_key_id=portal_key_id,
        reminder_at=reminder_time(
            secure_email.sent_at, secure_email.expires_at, reminder_after_hours
        ),
        open_dental=patient is not None and await goes_to_open_dental(db, patient),
    )
