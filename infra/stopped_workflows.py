"""A secure email whose workflow ended before the message did (an operator terminated it,
it failed or timed out): the office is told, and the patient's link says it is closed.

The reconciliation (``workflows.reconciling``) finds them; here the row is marked failed
with a timeline line, one office alert and an audit event, in one transaction, and only
if it is still open: a second run, or a second reconciler, changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.secure_email import EventKind
from infra import alerts, timeline
from infra.audit import SYSTEM, audit
from infra.secure_emails import fail_if_open

# The timeline line's key: one per secure email.
STOPPED_KEY = "stopped"


async def record_stopped(db: AsyncSession, secure_email_id: str, at: datetime, how: str) -> bool:
    """Marks it failed, if it is still open; ``how`` is Temporal's word for the end
    (``terminated``, ``failed``, ``timed_out``, ``canceled``), kept in the audit event.
    True when this call marked it."""
    owner = await fail_if_open(db, secure_email_id)
    if owner is None:
        return False
    await timeline.add(db, secure_email_id, EventKind.STOPPED, at, STOPPED_KEY)
    await alerts.raise_stopped(db, owner)
    audit(
        db,
        owner.practice_id,
        AuditAction.STOPPED,
        SYSTEM,
        patient_id=owner.patient_id,
        secure_email_id=secure_email_id,
        detail=f"workflow {how}",
    )
    await db.commit()
    return True
