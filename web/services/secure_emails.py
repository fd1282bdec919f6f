"""One secure email of the practice, as the office's status page and
``/api/v1/secure-emails/{id}`` load it and audit showing it.
"""

from __future__ import annotations

from fastapi import Request

from domain.audit import AuditAction
from infra import secure_emails
from infra.db.models import SecureEmail, StaffUser
from web.deps import DbSession, audit_staff, or_404

SECURE_EMAIL_NOT_FOUND = "Secure email not found"


async def practice_secure_email(
    db: DbSession, staff: StaffUser, secure_email_id: str
) -> SecureEmail:
    """A secure email of the staff member's practice; 404 for any other id."""
    found = await secure_emails.of_practice(db, staff.reach, secure_email_id)
    return or_404(found, SECURE_EMAIL_NOT_FOUND)


async def audit_viewed(
    request: Request,
    db: DbSession,
    staff: StaffUser,
    secure_email: SecureEmail,
    detail: str | None = None,
) -> None:
    """Records that the staff member was shown the secure email. Its subject and body are
    PHI (HIPAA 164.312(b)); the event names ids only."""
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_VIEW,
        patient_id=secure_email.patient_id,
        secure_email_id=secure_email.id,
        detail=detail,
    )
